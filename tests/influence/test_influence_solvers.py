"""The three solvers agree with torch.linalg.solve on small SPD systems and a tiny model's Hessian."""

from __future__ import annotations

import pytest
import torch

from rum._data import TensorData
from rum.influence import (
    Objective,
    ParamSpace,
    Term,
    select_parameters,
    solve_cg,
    solve_dense,
    solve_lissa,
    top_eigenvalue,
)


def _spd(p, seed, cond=20.0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(p, p, generator=g, dtype=torch.float64))
    evals = torch.logspace(0, torch.log10(torch.tensor(cond)).item(), p, dtype=torch.float64)
    return Q @ torch.diag(evals) @ Q.T, torch.randn(p, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_solvers_agree_on_spd_systems(seed):
    A, v = _spd(12, seed)
    for damping in (0.0, 0.5):
        ref = torch.linalg.solve(A + damping * torch.eye(12, dtype=A.dtype), v)
        x_d, info_d = solve_dense(A, v, damping)
        x_c, info_c = solve_cg(lambda u: A @ u, v, damping=damping, tol=1e-12, maxiter=100)
        top = top_eigenvalue(lambda u: A @ u, 12, iters=100, dtype=A.dtype)
        x_l, info_l = solve_lissa(lambda u: A @ u, v, damping=damping, scale=1.2 * (top + damping),
                                  depth=5000, tol=1e-13)
        assert info_d.residual < 1e-10
        assert torch.allclose(x_d, ref, atol=1e-9)
        assert torch.allclose(x_c, ref, atol=1e-8) and info_c.iterations <= 12 + 2
        assert torch.allclose(x_l, ref, atol=1e-6) and not info_l.diverged


def test_cg_flags_negative_curvature_and_lissa_flags_divergence():
    A = torch.diag(torch.tensor([2.0, -1.0], dtype=torch.float64))
    _, info = solve_cg(lambda u: A @ u, torch.tensor([1.0, 1.0], dtype=torch.float64))
    assert info.negative_curvature
    x, info = solve_lissa(lambda u: A @ u, torch.tensor([1.0, 1.0], dtype=torch.float64), scale=0.5, depth=200)
    assert info.diverged and torch.all(x == 0)


def test_dense_solver_stays_in_the_range_of_a_singular_matrix():
    A = torch.tensor([[1.0, -1.0], [-1.0, 1.0]], dtype=torch.float64)  # null space (1, 1)
    x, info = solve_dense(A, torch.tensor([1.0, -1.0], dtype=torch.float64))
    assert torch.allclose(A @ x, torch.tensor([1.0, -1.0], dtype=torch.float64))
    assert abs(float(x.sum())) < 1e-12 and not info.diverged


def test_solvers_agree_on_a_tiny_model_hessian():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double().eval()
    g = torch.Generator().manual_seed(0)
    data = TensorData(torch.randn(20, 3, generator=g, dtype=torch.float64), torch.randint(0, 2, (20,), generator=g))
    space = ParamSpace.of(model, select_parameters(model))
    obj = Objective(model, space, [Term(data)], weight_decay=0.5, batch_size=32)
    theta = space.read(model)
    H = obj.hessian(theta)
    v = torch.randn(space.size, generator=g, dtype=torch.float64)
    damping = 0.5
    ref = torch.linalg.solve(H + damping * torch.eye(space.size, dtype=H.dtype), v)
    x_d, _ = solve_dense(H, v, damping)
    x_c, _ = solve_cg(lambda u: obj.hvp(theta, u), v, damping=damping, tol=1e-12, maxiter=200)
    top = top_eigenvalue(lambda u: obj.hvp(theta, u), space.size, iters=100, dtype=H.dtype)
    x_l, _ = solve_lissa(lambda u: obj.hvp(theta, u), v, damping=damping, scale=1.2 * (top + damping),
                         depth=500, tol=1e-10)
    for x in (x_d, x_c, x_l):
        assert torch.linalg.vector_norm(x - ref) / torch.linalg.vector_norm(ref) < 1e-4


def test_preconditioned_cg_solves_the_system_in_fewer_products():
    A, v = _spd(40, 3, cond=1e4)
    want = torch.linalg.solve(A, v)
    x, plain = solve_cg(lambda u: A @ u, v, tol=1e-12, maxiter=500)
    # the inverse of a nearby matrix (A plus a rank-3 term, as when a few items
    # leave a cached Hessian): CG then needs about rank + 1 products
    U = torch.randn(40, 3, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    inv = torch.linalg.inv(A + 10.0 * U @ U.T)
    xp, pre = solve_cg(lambda u: A @ u, v, tol=1e-12, maxiter=500, precondition=lambda u: inv @ u)
    assert torch.allclose(x, want, atol=1e-8) and torch.allclose(xp, want, atol=1e-8)
    assert pre.residual <= 1e-12 and pre.iterations <= 5 < plain.iterations
    exact = torch.linalg.inv(A)
    _, one = solve_cg(lambda u: A @ u, v, tol=1e-10, precondition=lambda u: exact @ u)
    assert one.iterations == 1
