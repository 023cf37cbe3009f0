"""The course's models: pure TensorFlow and numpy, no web imports, usable from a notebook."""
