"""The labs of the course, in teaching order: the home page lists them, `live` ones link to their page."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Lab:
    slug: str
    title: str
    summary: str
    live: bool = False


LABS: tuple[Lab, ...] = (
    Lab(
        "neurons",
        "Single neurons",
        "Linear and logistic regression, softmax classification.",
        live=True,
    ),
    Lab(
        "descent", "Gradient descent", "Learning rates too small, good and overshooting.", live=True
    ),
    Lab(
        "mlp",
        "Multi-layer networks",
        "XOR and friends: hidden layers, activations and decision boundaries, trained live.",
        live=True,
    ),
    Lab(
        "backprop",
        "Backpropagation",
        "The chain rule through three sigmoid neurons, step by step.",
        live=True,
    ),
    Lab(
        "convolution",
        "Convolution and pooling",
        "Kernels, edge detection, activations, pooling.",
        live=True,
    ),
    Lab("images", "Working with images", "Loading, formats, normalization and manipulation."),
    Lab("cnn", "CNN training", "Train a small convolutional network; classify dog photos."),
    Lab("rnn", "Recurrent networks", "Sequences and hidden state."),
)


def find_lab(slug: str) -> Lab | None:
    return next((lab for lab in LABS if lab.slug == slug), None)
