"""StarGAN generator and PatchGAN critic (Choi et al. 2018), as GANMEX uses them.

Both networks work in "GAN space": pixels in [-1, 1]. Callers outside the GAN convert with
`to_gan` / `from_gan`, so every tensor crossing a module boundary stays in [0, 1] pixel space.
The critic has no class head by default: in GANMEX the frozen classifier under explanation is the
class discriminator. `class_head=True` restores StarGAN's own head (trained from scratch).
"""

from __future__ import annotations

import torch
from torch import nn

from ganmex.tensors import keep_colour


def to_gan(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] pixels -> [-1, 1] GAN space."""
    return x * 2.0 - 1.0


def from_gan(y: torch.Tensor) -> torch.Tensor:
    """[-1, 1] GAN space -> [0, 1] pixels."""
    return (y + 1.0) / 2.0


def _check_side(image_size: int) -> None:
    if image_size % 4 != 0 or image_size < 8:
        raise ValueError(
            f"image_size={image_size} does not work with the StarGAN generator: it down-samples twice by 2, "
            f"so the side must be divisible by 4 and >= 8 (resize the data, e.g. dataset.image_size=32)"
        )


def _norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)


class ResidualBlock(nn.Module):
    """conv3x3-IN-ReLU-conv3x3-IN plus identity: the bottleneck keeps the input's structure."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            _norm(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            _norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


OUTPUT_MODES = ("direct", "residual", "mask")


class Generator(nn.Module):
    """G(x, t): 7x7 conv, two stride-2 downs, `n_res` residual blocks, two ups, 7x7 conv.

    The target class enters as one-hot channels tiled over the image. Input and output in [-1, 1].
    `output` says how the last layer becomes x' (every caller of `forward` gets the composed x'):
      direct   x' = tanh(h)                       (StarGAN, GANMEX)
      residual x' = clamp(x + 2 tanh(h), -1, 1)   (a change that can reach any pixel value)
      mask     x' = A C + (1 - A) x, C = tanh(h_C), A = sigmoid(h_A) in [0, 1]   (GANimation): where
               A = 0 the input passes through untouched, so sparse masks give sparse edits.
    `keep_palette` then projects each pixel's change on x's own colour (`tensors.keep_colour`).
    """

    def __init__(
        self,
        channels: int,
        num_classes: int,
        image_size: int,
        conv_dim: int = 64,
        n_res: int = 6,
        output: str = "direct",
        skips: bool = False,
        keep_palette: bool = False,
    ):
        super().__init__()
        _check_side(image_size)
        if conv_dim <= 0 or n_res < 0:
            raise ValueError(f"gan.generator conv_dim={conv_dim} must be > 0 and n_res={n_res} >= 0")
        if output not in OUTPUT_MODES:
            raise ValueError(f"gan.generator.output={output!r} is not one of {', '.join(OUTPUT_MODES)}")
        self.channels, self.num_classes, self.image_size = channels, num_classes, image_size
        self.output = output
        self.keep_palette = keep_palette
        d = conv_dim
        layers: list[nn.Module] = [
            nn.Conv2d(channels + num_classes, d, 7, padding=3, bias=False),
            _norm(d),
            nn.ReLU(),
        ]
        for _ in range(2):
            layers += [nn.Conv2d(d, 2 * d, 4, stride=2, padding=1, bias=False), _norm(2 * d), nn.ReLU()]
            d *= 2
        layers += [ResidualBlock(d) for _ in range(n_res)]
        for _ in range(2):
            layers += [
                nn.ConvTranspose2d(d, d // 2, 4, stride=2, padding=1, bias=False),
                _norm(d // 2),
                nn.ReLU(),
            ]
            d //= 2
        out_channels = channels + 1 if output == "mask" else channels  # mask: + one attention channel
        layers.append(nn.Conv2d(d, out_channels, 7, padding=3, bias=False))
        self.main = nn.Sequential(*layers)
        # U-Net-style additive skips: the stem's and the first down block's features (full and half
        # resolution) are added to the matching up block's output, so edits can be drawn at pixel
        # resolution instead of through the 1/4-resolution bottleneck alone. Layer indices: stem 0-2,
        # downs 3-5 and 6-8, residual blocks, then ups of 3 layers each.
        self.skips = skips
        up1_end, up2_end = 8 + n_res + 3, 8 + n_res + 6
        self._save_after = {2: "full", 5: "half"}
        self._add_after = {up1_end: "half", up2_end: "full"}

    def forward_with_mask(
        self, x: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(x', A): the composed output and, in `mask` mode, the attention A (N, 1, H, W), else None."""
        if x.shape[1] != self.channels or x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(
                f"generator got input {tuple(x.shape)}; expected N x {self.channels} x H x W "
                f"with H, W divisible by 4"
            )
        onehot = nn.functional.one_hot(target.long(), self.num_classes).to(x.dtype)
        tiled = onehot[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        h = self._trunk(torch.cat([x, tiled], dim=1))
        attention = None
        if self.output == "direct":
            out = torch.tanh(h)
        elif self.output == "residual":
            out = (x + 2.0 * torch.tanh(h)).clamp(-1.0, 1.0)
        else:
            out, attention = compose_mask(
                x, torch.tanh(h[:, : self.channels]), torch.sigmoid(h[:, self.channels :])
            )
        if self.keep_palette:
            out = to_gan(keep_colour(from_gan(x), from_gan(out)))
        return out, attention

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.forward_with_mask(x, target)[0]

    def _trunk(self, h: torch.Tensor) -> torch.Tensor:
        if not self.skips:
            return self.main(h)
        saved: dict[str, torch.Tensor] = {}
        for index, layer in enumerate(self.main):
            h = layer(h)
            if index in self._save_after:
                saved[self._save_after[index]] = h
            elif index in self._add_after:
                h = h + saved[self._add_after[index]]
        return h


def compose_mask(
    x: torch.Tensor, content: torch.Tensor, attention: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """GANimation's blend A C + (1 - A) x (A broadcast over channels); returns (x', A)."""
    return attention * content + (1.0 - attention) * x, attention


def critic_depth(image_size: int) -> int:
    """Number of stride-2 4x4 convs: halve while the next spatial size stays >= 3."""
    depth, size = 0, image_size
    while (size - 4 + 2) // 2 + 1 >= 3:
        size = (size - 4 + 2) // 2 + 1
        depth += 1
    if depth == 0:
        raise ValueError(f"image_size={image_size} is too small for the PatchGAN critic (needs >= 6)")
    return depth


class Critic(nn.Module):
    """PatchGAN of strided 4x4 convs + LeakyReLU(0.01); one real/fake score per image (patch mean).

    With `class_head=True` a second conv over the whole remaining map gives class logits (StarGAN's
    auxiliary classifier), for training without an external classifier.
    With `conditional=True` the score head has one output per class and `forward(x, labels)` reads the
    one of each image's label (StarGAN v2's multi-task discriminator): the critic then asks "is this a
    real digit *of class t*", so a half-drawn t that only fools f scores as fake.
    """

    def __init__(
        self,
        channels: int,
        num_classes: int,
        image_size: int,
        conv_dim: int = 64,
        class_head: bool = False,
        max_dim: int = 1024,
        conditional: bool = False,
    ) -> None:
        super().__init__()
        depth = critic_depth(image_size)
        layers: list[nn.Module] = []
        in_ch, out_ch, size = channels, conv_dim, image_size
        for _ in range(depth):
            layers += [nn.Conv2d(in_ch, out_ch, 4, stride=2, padding=1), nn.LeakyReLU(0.01)]
            in_ch, out_ch, size = out_ch, min(2 * out_ch, max_dim), (size - 2) // 2 + 1
        self.main = nn.Sequential(*layers)
        self.conditional = conditional
        self.score = nn.Conv2d(in_ch, num_classes if conditional else 1, 3, padding=1, bias=False)
        self.classes = nn.Conv2d(in_ch, num_classes, size, bias=False) if class_head else None
        self.out_size = size

    @property
    def has_class_head(self) -> bool:
        return self.classes is not None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Real/fake score per image, shape (N,); a conditional critic scores each image as its label."""
        return self._score(self.main(x), labels)

    def forward_with_classes(
        self, x: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(score (N,), class logits (N, num_classes)); needs `class_head=True`."""
        if self.classes is None:
            raise RuntimeError("this critic has no class head; build it with gan.critic.class_head=true")
        h = self.main(x)
        return self._score(h, labels), self.classes(h).flatten(1)

    def _score(self, h: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        per_class = self.score(h).mean(dim=(2, 3))  # (N, 1) or (N, num_classes)
        if not self.conditional:
            return per_class[:, 0]
        if labels is None:
            raise ValueError(
                "a conditional critic (gan.critic.conditional=true) scores images given their labels"
            )
        return per_class.gather(1, labels.long().view(-1, 1))[:, 0]
