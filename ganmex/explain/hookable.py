"""Make a model's nonlinearities visible to hook-based attribution (DeepLIFT, DeepLIFT-SHAP, ε-LRP).

Those methods change the gradient at each nonlinearity *module* through hooks. A nonlinearity they
cannot hook falls back to the plain gradient, which is gradient x delta, not DeepLIFT: a functional
`F.relu`, a module used twice in one pass, an in-place ReLU (Captum refuses it), a nonlinearity
without a rule (GELU), or a compiled TorchScript model. `audit` finds each case on one probe pass;
`hookable` returns a copy of the model (sharing its parameters) in which every nonlinearity is a
module of its own, used once, or raises `HooksUnsupported` with the reason.
"""

from __future__ import annotations

import copy
import weakref
from collections import Counter
from dataclasses import dataclass, field

import torch
import torch.fx as fx
from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

# functions (torch, functional, tensor methods and aten ops, by base name) that are nonlinear
NONLINEAR_FUNCTIONS = frozenset(
    {
        "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish", "sigmoid", "tanh",
        "softplus", "softmax", "log_softmax", "softmin", "hardtanh", "hardswish", "hardsigmoid", "prelu",
        "rrelu", "glu", "logsigmoid", "softsign", "tanhshrink", "threshold", "max_pool1d", "max_pool2d",
        "max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices",
        "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    }
)  # fmt: skip
# the functional forms a rewrite turns into modules: name -> the module class, which takes the call's
# remaining arguments in the same order (F.max_pool2d(x, 2, 2) -> nn.MaxPool2d(2, 2))
MODULE_FOR_FUNCTION: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "max_pool1d": nn.MaxPool1d,
    "max_pool2d": nn.MaxPool2d,
    "max_pool3d": nn.MaxPool3d,
}
REWRITTEN_PREFIX = "hookable_"


class HooksUnsupported(TypeError):
    """A model whose nonlinearities hook-based attribution cannot see; the message says which and why."""


def base_name(func: object) -> str:
    """`relu` for F.relu, torch.relu, Tensor.relu_, aten.relu.default and aten.relu_.default."""
    name = getattr(func, "__name__", "") or str(func)
    name = name.split(".")[0].lstrip("_")
    return name[:-1] if name.endswith("_") else name


def is_leaf(module: nn.Module) -> bool:
    return next(module.children(), None) is None


@dataclass
class HookAudit:
    """What one forward pass showed about a model's nonlinearities."""

    inplace: list[str] = field(default_factory=list)  # supported modules with inplace=True
    reused: dict[str, str] = field(default_factory=dict)  # module -> the module that calls it again
    functional: list[tuple[str, str]] = field(default_factory=list)  # (calling module, function)
    unsupported: list[str] = field(default_factory=list)  # nonlinear modules without a DeepLIFT rule
    opaque: str | None = None  # why nothing inside can be hooked at all

    @property
    def clean(self) -> bool:
        return not (self.inplace or self.reused or self.functional or self.unsupported or self.opaque)

    def describe(self) -> str:
        parts = []
        if self.opaque:
            parts.append(self.opaque)
        if self.unsupported:
            parts.append(f"no rule for {', '.join(sorted(set(self.unsupported)))}")
        if self.functional:
            calls = sorted({f"{func} in {owner or '<root>'}" for owner, func in self.functional})
            parts.append(f"functional {', '.join(calls[:4])}")
        if self.reused:
            parts.append(f"modules used more than once: {', '.join(sorted(self.reused)[:4])}")
        if self.inplace:
            parts.append(f"in-place {', '.join(self.inplace[:4])}")
        return "; ".join(parts)


class _CallRecorder(TorchFunctionMode):
    """Records each torch function call with the module running when it was made."""

    def __init__(self, stack: list[str]) -> None:
        super().__init__()
        self.stack = stack
        self.calls: list[tuple[str, str]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls.append((self.stack[-1] if self.stack else "", base_name(func)))
        return func(*args, **(kwargs or {}))


def audit(model: nn.Module, example: Tensor, check_rules: bool = True) -> HookAudit:
    """Run `model` once on `example` and report every nonlinearity a hook cannot see; with
    `check_rules`, also nonlinear modules that DeepLIFT has no rule for (LRP checks its own)."""
    found = HookAudit()
    modules = dict(model.named_modules())
    scripted = [name or "<root>" for name, m in modules.items() if isinstance(m, torch.jit.ScriptModule)]
    if scripted:
        found.opaque = f"TorchScript ({scripted[0]}): its operations are compiled, not hookable modules"
        return found
    stack: list[str] = []
    calls: Counter[str] = Counter()
    handles = []
    for name, module in modules.items():

        def enter(_module, _inputs, name=name):
            if stack and name in calls and isinstance(modules[name], tuple(SUPPORTED_NON_LINEAR)):
                found.reused.setdefault(name, stack[-1])
            calls[name] += 1
            stack.append(name)

        def leave(_module, _inputs, _output):
            stack.pop()

        handles += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    recorder = _CallRecorder(stack)
    try:
        with torch.no_grad(), recorder:
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    for owner, func in recorder.calls:
        if func not in NONLINEAR_FUNCTIONS:
            continue
        module = modules.get(owner)
        if module is not None and is_leaf(module):
            if check_rules and type(module) not in SUPPORTED_NON_LINEAR:
                found.unsupported.append(type(module).__name__)
        else:
            found.functional.append((owner, func))
    found.inplace = [
        name
        for name, module in modules.items()
        if type(module) in SUPPORTED_NON_LINEAR and getattr(module, "inplace", False) and calls[name]
    ]
    return found


def shared_copy(model: nn.Module) -> nn.Module:
    """A structural copy of `model` whose parameters and buffers are the original tensors, so that
    later in-place changes to the weights (cascading randomisation) reach the copy too."""
    memo = {id(t): t for t in (*model.parameters(), *model.buffers())}
    return copy.deepcopy(model, memo)


def _graph_of(module: nn.Module, name: str) -> fx.GraphModule:
    if isinstance(module, fx.GraphModule):
        return module
    try:
        return fx.symbolic_trace(module)
    except Exception as error:  # fx raises many types for code it cannot trace
        reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise HooksUnsupported(
            f"{name or '<root>'} ({type(module).__name__}) calls a nonlinearity as a function and torch.fx "
            f"cannot trace it ({reason}); define its nonlinearities as modules, each used once"
        ) from None


def _module_for_call(node: fx.Node) -> nn.Module | None:
    """The module that computes this functional call, or None when its arguments are not constants."""
    options = {k: v for k, v in node.kwargs.items() if k not in ("inplace", "return_indices")}
    settings = (*node.args[1:], *options.values())
    if node.kwargs.get("return_indices") or any(isinstance(v, fx.Node) for v in settings):
        return None
    cls = MODULE_FOR_FUNCTION[base_name(node.target)]
    return cls(*node.args[1:], **options) if cls not in (nn.ReLU, nn.Sigmoid, nn.Tanh) else cls()


def _own_modules(graph_module: fx.GraphModule) -> fx.GraphModule:
    """Give every nonlinearity of the graph a module of its own: functional calls become modules,
    a module called twice gets a copy for the second call, in-place modules become out-of-place."""
    seen: set[str] = set()
    fresh = 0
    for node in list(graph_module.graph.nodes):
        replacement: nn.Module | None = None
        if node.op in ("call_function", "call_method") and base_name(node.target) in MODULE_FOR_FUNCTION:
            replacement = _module_for_call(node)
            if replacement is not None:
                node.args, node.kwargs = node.args[:1], {}
        elif node.op == "call_module":
            module = graph_module.get_submodule(node.target)
            if type(module) in SUPPORTED_NON_LINEAR and (
                node.target in seen or getattr(module, "inplace", 0)
            ):
                replacement = copy.deepcopy(module)
                if hasattr(replacement, "inplace"):
                    replacement.inplace = False
            seen.add(node.target)
        if replacement is None:
            continue
        target = f"{REWRITTEN_PREFIX}{fresh}"
        fresh += 1
        graph_module.add_submodule(target, replacement)
        node.op, node.target = "call_module", target
    graph_module.graph.lint()
    graph_module.recompile()
    return graph_module


def _replace(root: nn.Module, name: str, module: nn.Module) -> nn.Module:
    if not name:
        return module
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)
    return root


def _rewrite(model: nn.Module, found: HookAudit) -> nn.Module:
    result = shared_copy(model)
    for name in found.inplace:
        result.get_submodule(name).inplace = False
    owners = {owner for owner, _ in found.functional} | set(found.reused.values())
    done: list[str] = []
    # outermost first: tracing an owner inlines the owners inside it
    for owner in sorted(owners, key=lambda name: (name.count(".") if name else -1, name)):
        if any(not d or owner.startswith(f"{d}.") for d in done):
            continue
        module = result.get_submodule(owner) if owner else result
        result = _replace(result, owner, _own_modules(_graph_of(module, owner)))
        done.append(owner)
    return result


_PREPARED: weakref.WeakKeyDictionary[nn.Module, dict[bool, nn.Module | HooksUnsupported]] = (
    weakref.WeakKeyDictionary()
)


def hookable(model: nn.Module, example: Tensor, check_rules: bool = True) -> nn.Module:
    """`model` itself when hooks see every nonlinearity; else a parameter-sharing copy rewritten so
    that they do; else HooksUnsupported naming what hooks cannot see. Cached per model object.
    `check_rules=False` leaves nonlinear modules without a DeepLIFT rule to the caller (LRP)."""
    prepared = _PREPARED.setdefault(model, {})
    if check_rules not in prepared:
        prepared[check_rules] = _prepare(model, example[:1].detach(), check_rules)
    result = prepared[check_rules]
    if isinstance(result, HooksUnsupported):
        raise result
    return result


def _prepare(model: nn.Module, example: Tensor, check_rules: bool) -> nn.Module | HooksUnsupported:
    found = audit(model, example, check_rules)
    if found.clean:
        return model
    if found.opaque or found.unsupported:
        return HooksUnsupported(found.describe())
    try:
        rewritten = _rewrite(model, found)
    except HooksUnsupported as error:
        return error
    left = audit(rewritten, example, check_rules)
    if not left.clean:
        return HooksUnsupported(f"{found.describe()}; after rewriting still {left.describe()}")
    return rewritten
