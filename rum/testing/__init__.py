"""Conformance kit for unlearner plug-ins.

Every built-in unlearner passes these checks, and so should yours::

    from rum.testing import check_unlearner
    check_unlearner(MyUnlearner())          # raises ConformanceError listing failures

or, with pytest, one test per (unlearner, check)::

    from rum.testing import parametrize_with_checks

    @parametrize_with_checks([MyUnlearner()])
    def test_my_unlearner(unlearner, check):
        check(unlearner)

The checks (see :mod:`rum.testing.checks`) run the unlearner on a tiny
memorised task (:func:`tiny_task`) through the public API: the output keeps
architecture, dtype and device; inputs are not mutated; the same seed gives
identical weights; no hooks are left behind, even after an exception;
parameters round-trip through ``get_params``/``clone``/``repr`` and are
validated; an empty forget set is rejected; it runs on the CPU (and CUDA when
present); an epoch-based unlearner reports every epoch to the epoch hook, stops
when asked, and ``truncated(k)`` replays its first ``k`` epochs exactly (what the
``auto`` policy relies on); and forget accuracy moves towards the retrain oracle
while test accuracy holds. ``pytest`` is only imported by :func:`parametrize_with_checks`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rum.testing.checks import CHECKS, CheckFailure, ConformanceError
from rum.testing.fixtures import TinyTask, make_tiny_model, tiny_task
from rum.unlearners.base import Unlearner

__all__ = [
    "check_unlearner",
    "parametrize_with_checks",
    "all_checks",
    "registered_unlearners",
    "ConformanceError",
    "CheckFailure",
    "TinyTask",
    "tiny_task",
    "make_tiny_model",
]


def all_checks() -> list[Callable[[Unlearner], Any]]:
    """Every conformance check, in the order they run.

    Examples:
        >>> from rum.testing import all_checks
        >>> all_checks()[0].__name__
        'check_tags'
    """
    return list(CHECKS)


def _as_instance(spec: Any) -> Unlearner:
    """An instance from an instance, a class (with its ``_test_params``) or a registered name."""
    from rum.unlearners.registry import make_unlearner

    if isinstance(spec, Unlearner):
        return spec
    if isinstance(spec, type) and issubclass(spec, Unlearner):
        return make_unlearner(spec, spec._test_params(), "unlearner")
    if isinstance(spec, str):
        from rum.unlearners.registry import get_unlearner

        cls = get_unlearner(spec)
        return make_unlearner(cls, cls._test_params(), "unlearner")
    from rum.exceptions import InvalidParameterError

    raise InvalidParameterError(
        "unlearner must be an Unlearner instance, an Unlearner subclass or a registered name, "
        f"got {type(spec).__name__}."
    )


def _select(checks: Iterable[Any] | None) -> list[Callable]:
    if checks is None:
        return list(CHECKS)
    by_name = {c.__name__: c for c in CHECKS}
    out = []
    for c in checks:
        if callable(c):
            out.append(c)
        elif c in by_name:
            out.append(by_name[c])
        else:
            from rum._validation import did_you_mean
            from rum.exceptions import UnknownNameError

            raise UnknownNameError(
                f"checks: {c!r} is not a conformance check.{did_you_mean(c, by_name)} "
                f"Known checks: {', '.join(by_name)}."
            )
    return out


def _expected(u: Unlearner, extra: Mapping[str, str] | None) -> dict[str, str]:
    declared = dict(type(u)._expected_failed_checks())
    declared.update(dict(extra or {}))
    return declared


def check_unlearner(
    unlearner: Any,
    *,
    checks: Iterable[Any] | None = None,
    expected_failed_checks: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Run the conformance checks on an unlearner; raise if any fails unexpectedly.

    Args:
        unlearner: an :class:`~rum.Unlearner` instance (checked with its
            parameters as given), a subclass or a registered name (built with
            its ``_test_params()``).
        checks: names or functions of the checks to run (default: all, see
            :func:`all_checks`).
        expected_failed_checks: ``{check name: reason}`` for known gaps; added
            to what the class declares in ``_expected_failed_checks()``. These
            are reported as ``"xfail"`` instead of raising.

    Returns:
        ``{check name: "passed" | "xfail" | "xpass"}``.

    Raises:
        ConformanceError: an ``AssertionError`` listing every unexpected
            failure, each with how to fix it.

    Examples:
        >>> from rum.testing import check_unlearner
        >>> check_unlearner("noop", checks=["check_params_roundtrip"])
        {'check_params_roundtrip': 'passed'}
    """
    u = _as_instance(unlearner)
    expected = _expected(u, expected_failed_checks)
    results: dict[str, str] = {}
    failures: dict[str, str] = {}
    for check in _select(checks):
        name = check.__name__
        try:
            check(u)
        except Exception as err:  # noqa: BLE001
            if name in expected:
                results[name] = "xfail"
            else:
                results[name] = "failed"
                failures[name] = str(err) if isinstance(err, AssertionError) else (
                    f"raised {type(err).__name__}: {err}"
                )
        else:
            results[name] = "xpass" if name in expected else "passed"
    if failures:
        raise ConformanceError(type(u).name or type(u).__name__, failures)
    return results


def registered_unlearners(*, builtin_only: bool = True) -> list[Unlearner]:
    """One instance per registered unlearner, built with its ``_test_params()``.

    Args:
        builtin_only: keep only classes defined inside the ``rum`` package
            (so test doubles registered by other test modules are left out).

    Examples:
        >>> from rum.testing import registered_unlearners
        >>> "Noop()" in [repr(u) for u in registered_unlearners()]
        True
    """
    from rum.unlearners.registry import UNLEARNERS

    out = []
    for name in UNLEARNERS.names():
        cls = UNLEARNERS.get(name)
        if builtin_only and not cls.__module__.startswith("rum."):
            continue
        out.append(_as_instance(name))
    return out


def parametrize_with_checks(
    unlearners: Iterable[Any],
    *,
    checks: Iterable[Any] | None = None,
    expected_failed_checks: Mapping[str, str] | Callable[[Unlearner], Mapping[str, str]] | None = None,
):
    """A ``pytest.mark.parametrize`` decorator giving one test per (unlearner, check).

    The decorated test takes the arguments ``unlearner`` and ``check`` and
    calls ``check(unlearner)``. Test ids read ``<name>-<check>``; expected
    failures (declared by the class or passed here, as a mapping or a function
    of the unlearner) are marked ``xfail`` with their reason.

    Examples:
        >>> from rum.testing import parametrize_with_checks
        >>> @parametrize_with_checks(["noop", "finetune"])  # doctest: +SKIP
        ... def test_conformance(unlearner, check):
        ...     check(unlearner)
    """
    import pytest

    params = []
    for spec in unlearners:
        u = _as_instance(spec)
        extra = expected_failed_checks(u) if callable(expected_failed_checks) else expected_failed_checks
        expected = _expected(u, extra)
        label = type(u).name or type(u).__name__
        for check in _select(checks):
            marks = []
            if check.__name__ in expected:
                marks.append(pytest.mark.xfail(reason=expected[check.__name__], strict=False))
            params.append(pytest.param(u, check, id=f"{label}-{check.__name__}", marks=marks))
    return pytest.mark.parametrize("unlearner, check", params)
