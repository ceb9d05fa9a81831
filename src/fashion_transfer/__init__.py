"""fashion-transfer: transfer learning on Fashion-MNIST as a Kedro project."""

__version__ = "0.1.0"
