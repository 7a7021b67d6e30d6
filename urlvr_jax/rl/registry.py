"""A small name -> function registry, shared by advantage estimators, policy losses, aggregations and KL.

Usage (as tunix's ``@register_policy_loss_fn`` / verl's ``register_adv_est``)::

    ADVANTAGES = Registry("advantage estimator")

    @ADVANTAGES.register("grpo")
    def grpo(...): ...

    ADVANTAGES.get("grpo")   # unknown names raise ValueError listing the valid ones
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

F = TypeVar("F", bound=Callable)


class Registry(Generic[F]):
    """Maps names (and aliases) to functions; :meth:`get` fails with the list of valid names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._fns: dict[str, F] = {}

    def register(self, name: str, *aliases: str, replace: bool = False) -> Callable[[F], F]:
        """Decorator registering ``fn`` under ``name`` and every alias; a name taken by another function is refused
        unless ``replace``."""

        def decorator(fn: F) -> F:
            for key in (name, *aliases):
                if key in self._fns and self._fns[key] is not fn and not replace:
                    raise ValueError(f"{self.kind} {key!r} is already registered (replace=True replaces it)")
                self._fns[key] = fn
            return fn

        return decorator

    def get(self, name: str) -> F:
        """Returns the function registered as ``name``."""
        try:
            return self._fns[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown {self.kind} {name!r}; valid names: {', '.join(self.names())}") from None

    def check(self, name: str) -> str:
        """Returns ``name`` if registered, else raises the same error as :meth:`get`."""
        self.get(name)
        return name

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._fns))

    def __contains__(self, name: object) -> bool:
        return name in self._fns

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
