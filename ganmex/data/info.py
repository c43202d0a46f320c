"""What models need to know about a dataset; light to import, so config checks need no Lightning."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


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
