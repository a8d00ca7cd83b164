"""wgan_app: train, load and demonstrate Wasserstein GANs on MNIST-style data."""

__version__ = "3.0.0"
