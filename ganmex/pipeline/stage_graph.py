"""Which stages each stage is made from: the one declaration behind the runner's order, the upstream stages
`stage=X` runs first, and the upstream artifacts hashed into each artifact's name (pipeline/stage.py).

Kept free of Lightning and the models so that validating a config stays fast.
"""

from __future__ import annotations

# stage -> the stages whose artifacts it is made from, in the order they are declared
NEEDS: dict[str, tuple[str, ...]] = {
    "classifier": (),
    "gan": ("classifier",),  # trained against the frozen classifier
    "oracle": (),  # an independent judge: its own data pass, no other artifact
    "autoencoder": (),  # an in-painting prior learnt from the images alone
    "evaluate": ("classifier", "gan", "oracle", "autoencoder"),  # reads them; has no artifact itself
}


def stage_order(needs: dict[str, tuple[str, ...]] = NEEDS) -> tuple[str, ...]:
    """Every stage after the stages it needs; otherwise in declaration order."""
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise ValueError(f"stage dependencies form a cycle: {' -> '.join((*path, name))}")
        if name in order:
            return
        for need in needs[name]:
            visit(need, (*path, name))
        order.append(name)

    for name in needs:
        visit(name, ())
    return tuple(order)
