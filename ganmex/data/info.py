"""What models need to know about a dataset; light to import, so config checks need no Lightning."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ganmex.errors import ConfigError


@dataclass(frozen=True)
class DatasetInfo:
    """What models need to know about the data; stored in every artifact."""

    name: str
    num_classes: int
    channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> DatasetInfo:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def check_compatible(
    trained: DatasetInfo,
    data: DatasetInfo,
    model: str = "classifier",
    use: str = "evaluated on",
    fix: str = "pick a matching eval_dataset",
) -> None:
    """Refuse data whose channels, image size or classes differ from what a model was trained on: the
    forward pass fails deep inside the network, or worse, a label beyond its classes trains silently."""
    if (trained.channels, trained.image_size, trained.num_classes) != (
        data.channels,
        data.image_size,
        data.num_classes,
    ):
        raise ConfigError(
            f"{model} trained on {trained.name} ({trained.channels}x{trained.image_size}px, "
            f"{trained.num_classes} classes) cannot be {use} {data.name} ({data.channels}x"
            f"{data.image_size}px, {data.num_classes} classes); {fix}"
        )
