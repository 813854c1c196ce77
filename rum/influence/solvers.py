"""Solvers for ``(H + damping I) x = v``: exact dense, conjugate gradient and LiSSA.

Pure functions: each takes the matrix (dense) or a Hessian-vector product
callable and a right-hand side, and returns the solution with a
:class:`SolveInfo` saying how it went. ``damping`` is always a true Tikhonov
term added to ``H``; LiSSA's ``scale`` only rescales the recursion (its fixed
point does not depend on it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from rum._records import jsonable

__all__ = ["SolveInfo", "solve_dense", "solve_cg", "solve_lissa", "top_eigenvalue"]

MatVec = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class SolveInfo:
    """How one linear solve went.

    Attributes:
        solver: ``"exact"``, ``"cg"`` or ``"lissa"``.
        iterations: matrix-vector products (CG), recursion steps summed over
            repeats (LiSSA), or 0 (exact).
        residual: relative residual ``||(H + damping I) x - v|| / ||v||`` as
            the solver measured it (NaN where it does not measure it).
        damping: the Tikhonov damping used.
        scale: LiSSA's scale (``None`` for the others).
        diverged: the solve produced NaN/inf or blew up; ``x`` is then zero.
        negative_curvature: the matrix was found not to be positive definite.
    """

    solver: str
    iterations: int
    residual: float
    damping: float
    scale: float | None = None
    diverged: bool = False
    negative_curvature: bool = False

    def to_dict(self) -> dict:
        return jsonable(self.__dict__)


def _norm(v: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(v))


def solve_dense(H: torch.Tensor, v: torch.Tensor, damping: float = 0.0) -> tuple[torch.Tensor, SolveInfo]:
    """Solve ``(H + damping I) x = v`` exactly.

    A Cholesky solve when the matrix is positive definite; otherwise an
    eigen-decomposition whose (near-)zero eigenvalues are dropped, which keeps
    ``x`` in the range of the matrix (e.g. the softmax intercept direction).

    Examples:
        >>> import torch
        >>> x, info = solve_dense(torch.tensor([[2., 0.], [0., 4.]]), torch.tensor([2., 2.]))
        >>> x.tolist(), info.solver
        ([1.0, 0.5], 'exact')
    """
    A = H if damping == 0 else H + damping * torch.eye(H.shape[0], dtype=H.dtype, device=H.device)
    L, info = torch.linalg.cholesky_ex(A)
    negative = False
    if int(info) == 0:
        x = torch.cholesky_solve(v.unsqueeze(1), L).squeeze(1)
    else:
        evals, evecs = torch.linalg.eigh(A)
        top = float(evals.abs().max())
        eps = torch.finfo(A.dtype).eps * A.shape[0] * max(top, 1e-30) * 10
        negative = bool((evals < -eps).any())
        inv = torch.where(evals.abs() > eps, 1.0 / evals, torch.zeros_like(evals))
        x = evecs @ (inv * (evecs.T @ v))
    vn = _norm(v)
    res = _norm(A @ x - v) / vn if vn > 0 else 0.0
    if not torch.isfinite(x).all():
        return torch.zeros_like(v), SolveInfo("exact", 0, float("nan"), damping, diverged=True)
    return x, SolveInfo("exact", 0, res, damping, negative_curvature=negative)


def solve_cg(
    matvec: MatVec,
    v: torch.Tensor,
    *,
    damping: float = 0.0,
    tol: float = 1e-6,
    maxiter: int = 100,
    x0: torch.Tensor | None = None,
    precondition: MatVec | None = None,
) -> tuple[torch.Tensor, SolveInfo]:
    """Conjugate gradient on ``(H + damping I) x = v`` with ``H`` given by ``matvec``.

    ``precondition`` applies an approximate inverse of the matrix (symmetric
    positive definite); the closer it is, the fewer products are needed.

    Stops when the relative residual is below ``tol``, after ``maxiter``
    products, or when a search direction has non-positive curvature (then the
    iterate reached so far is returned and ``negative_curvature`` is set).

    Examples:
        >>> import torch
        >>> A = torch.tensor([[4., 1.], [1., 3.]])
        >>> x, info = solve_cg(lambda u: A @ u, torch.tensor([1., 2.]))
        >>> [round(t, 4) for t in x.tolist()], info.iterations <= 2
        ([0.0909, 0.6364], True)
    """

    def A(u: torch.Tensor) -> torch.Tensor:
        return matvec(u) + damping * u

    vn = _norm(v)
    if vn == 0:
        return torch.zeros_like(v), SolveInfo("cg", 0, 0.0, damping)

    def M(u: torch.Tensor) -> torch.Tensor:
        return u if precondition is None else precondition(u)

    x = torch.zeros_like(v) if x0 is None else x0.clone()
    r = v - A(x) if x0 is not None else v.clone()
    z = M(r)
    p = z.clone()
    rr = float(r @ r)
    rz = rr if precondition is None else float(r @ z)
    it, negative = 0, False
    while it < maxiter and math.sqrt(rr) > tol * vn:
        Ap = A(p)
        it += 1
        pAp = float(p @ Ap)
        if not math.isfinite(pAp):
            return torch.zeros_like(v), SolveInfo("cg", it, float("nan"), damping, diverged=True)
        if pAp <= 0:
            negative = True
            break
        alpha = rz / pAp
        x = x + alpha * p
        r = r - alpha * Ap
        rr = float(r @ r)
        z = M(r)
        rz_new = rr if precondition is None else float(r @ z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    if not torch.isfinite(x).all():
        return torch.zeros_like(v), SolveInfo("cg", it, float("nan"), damping, diverged=True)
    return x, SolveInfo("cg", it, math.sqrt(rr) / vn, damping, negative_curvature=negative)


def solve_lissa(
    matvec: MatVec,
    v: torch.Tensor,
    *,
    damping: float = 0.0,
    scale: float = 10.0,
    depth: int = 1000,
    repeats: int = 1,
    tol: float = 1e-5,
) -> tuple[torch.Tensor, SolveInfo]:
    """LiSSA: the truncated Neumann series for ``(H + damping I)^-1 v``.

    Runs ``h <- v + h - (H_B h + damping h) / scale`` from ``h = v`` for up to
    ``depth`` steps (``matvec`` may be a stochastic mini-batch HVP) and returns
    ``h / scale``, averaged over ``repeats`` runs. It converges when ``scale``
    exceeds the largest eigenvalue of ``H + damping I`` and that matrix is
    positive definite; its fixed point is then ``(H + damping I)^-1 v``
    whatever the scale. A run stops early once the relative change of ``h``
    falls below ``tol``. A run whose iterate grows past ``1e6`` times its
    start, or turns NaN, is reported as diverged and contributes nothing.

    Examples:
        >>> import torch
        >>> A = torch.tensor([[4., 1.], [1., 3.]])
        >>> x, info = solve_lissa(lambda u: A @ u, torch.tensor([1., 2.]), scale=6.0, depth=500)
        >>> [round(t, 3) for t in x.tolist()]
        [0.091, 0.636]
    """
    vn = _norm(v)
    if vn == 0:
        return torch.zeros_like(v), SolveInfo("lissa", 0, 0.0, damping, scale)
    total = torch.zeros_like(v)
    steps, good, diverged = 0, 0, False
    for _ in range(repeats):
        h = v.clone()
        ok = True
        for _ in range(depth):
            h_new = v + h - (matvec(h) + damping * h) / scale
            steps += 1
            hn = _norm(h_new)
            if not math.isfinite(hn) or hn > 1e6 * vn * max(1.0, scale):
                ok = False
                break
            change = _norm(h_new - h)
            h = h_new
            if change <= tol * hn:
                break
        if ok:
            total += h / scale
            good += 1
        else:
            diverged = True
    if good == 0:
        return torch.zeros_like(v), SolveInfo("lissa", steps, float("nan"), damping, scale, diverged=True)
    return total / good, SolveInfo("lissa", steps, float("nan"), damping, scale, diverged=diverged)


def top_eigenvalue(
    matvec: MatVec, p: int, *, iters: int = 20, generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
) -> float:
    """Largest absolute eigenvalue of a symmetric operator, by power iteration.

    Examples:
        >>> import torch
        >>> round(top_eigenvalue(lambda u: torch.diag(torch.tensor([1., 5.])) @ u, 2), 3)
        5.0
    """
    u = torch.randn(p, generator=generator, dtype=dtype).to(device)
    u = u / torch.linalg.vector_norm(u)
    lam = 0.0
    for _ in range(iters):
        w = matvec(u)
        lam = float(torch.linalg.vector_norm(w))
        if lam == 0 or not math.isfinite(lam):
            return lam
        u = w / lam
    return lam
