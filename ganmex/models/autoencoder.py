"""Convolutional autoencoder on [0, 1] pixels: CEM's data-manifold prior and FIDO's in-painter.

The `autoencoder=conv_ae` stage trains it with random boxes blanked out of the input and the loss on
the clean image, so the same network both reconstructs (CEM's γ‖x − AE(x)‖² term) and in-paints.

Loading a trained one (what FIDO's autoencoder in-filler and CEM use)::

    from ganmex.models.loading import load_autoencoder
    ae = load_autoencoder("outputs/artifacts/autoencoder-<hash>", device="cpu")  # frozen, eval mode
    recon = ae(x)                     # x: (N, C, H, W) in [0, 1] -> same shape in [0, 1]
    filled = ae.inpaint(x, keep)      # keep: 1 = observed pixel, 0 = to fill; observed pixels unchanged

The checkpoint stores the constructor arguments next to the weights.
"""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.ReLU())


class ConvAutoencoder(nn.Module):
    """conv encoder (two stride-2 downsamplings) -> conv decoder -> sigmoid, so outputs stay in [0, 1].

    Works for any channel count and any image size divisible by 4 (28 for MNIST, 32 for CIFAR/SVHN).
    """

    def __init__(self, channels: int, image_size: int, width: int = 16, latent_channels: int = 4) -> None:
        super().__init__()
        if image_size % 4 != 0:
            raise ValueError(
                f"autoencoder image_size={image_size} must be divisible by 4 (two stride-2 levels); "
                f"resize the dataset, e.g. dataset.image_size=28 or 32"
            )
        if channels <= 0 or width <= 0 or latent_channels <= 0:
            raise ValueError(
                f"autoencoder channels={channels}, width={width}, "
                f"latent_channels={latent_channels} must all be > 0"
            )
        self.hparams = {
            "channels": channels,
            "image_size": image_size,
            "width": width,
            "latent_channels": latent_channels,
        }
        self.encoder = nn.Sequential(
            _block(channels, width, 1),
            _block(width, width, 2),
            _block(width, 2 * width, 2),
            nn.Conv2d(2 * width, latent_channels, 3, padding=1),
        )
        self.decoder = nn.Sequential(
            _block(latent_channels, 2 * width, 1),
            nn.Upsample(scale_factor=2, mode="nearest"),
            _block(2 * width, width, 1),
            nn.Upsample(scale_factor=2, mode="nearest"),
            _block(width, width, 1),
            nn.Conv2d(width, channels, 3, padding=1),
            nn.Sigmoid(),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-normal conv weights and zero biases: PyTorch's default init shrinks the signal through this
        many layers so much that Adam kills every ReLU and the AE collapses to the mean image."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def inpaint(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Fill the pixels where `keep` is 0 with the reconstruction of the masked image.

        The masked pixels are set to 0 (black) before encoding, exactly as in training.
        """
        keep = keep.to(x.dtype)
        masked = x * keep
        return masked + (1.0 - keep) * self(masked)
