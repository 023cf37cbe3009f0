"""The CNN jobs the tests submit: a tiny network on 16×16 pictures, so an epoch takes a second or
two and a long job is long only through its epochs."""


def tiny_job(dataset: str = "colours", epochs: int = 1) -> dict:
    """A `POST /api/cnn/jobs` body: one block of four 3×3 filters, trained from scratch."""
    return {
        "dataset": dataset,
        "model": "scratch",
        "image_size": 16,
        "epochs": epochs,
        "blocks": [{"filters": 4, "kernel_size": 3}],
    }
