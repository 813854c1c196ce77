"""HVPs and Hessians against torch.autograd.functional.hessian on tiny models."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rum._data import TensorData
from rum.influence import BinaryLogit, Objective, ParamSpace, Term, select_parameters


def _tiny_mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)
    ).double()


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    return TensorData(torch.randn(n, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g))


def _reference_hessian(model, space, terms, lam, mask):
    theta0 = space.read(model)
    n = sum(t.weight * len(t.data) for t in terms)

    def L(theta):
        params = {**dict(model.named_parameters()), **space.unflatten(theta)}
        total = 0.0
        for t in terms:
            out = torch.func.functional_call(model, params, (t.data.X,))
            total = total + t.weight * F.cross_entropy(out, t.data.y, reduction="sum")
        return total / n + 0.5 * lam * (mask * theta * theta).sum()

    return torch.autograd.functional.hessian(L, theta0)


def test_hvp_matches_full_autograd_hessian_with_signed_terms():
    model = _tiny_mlp()
    space = ParamSpace.of(model, select_parameters(model))
    terms = [Term(_data(30, 1)), Term(_data(4, 2), -1.0), Term(_data(4, 3), 1.0)]
    obj = Objective(model.eval(), space, terms, weight_decay=0.3, batch_size=7)
    H_ref = _reference_hessian(model, space, terms, 0.3, obj.mask)
    theta = space.read(model)
    v = torch.randn(space.size, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(obj.hvp(theta, v), H_ref @ v, atol=1e-10)
    assert torch.allclose(obj.hessian(theta), H_ref, atol=1e-10)


def test_last_layer_subset_is_the_matching_hessian_block():
    model = _tiny_mlp()
    full = ParamSpace.of(model, select_parameters(model))
    last = ParamSpace.of(model, select_parameters(model, 1))
    assert last.names == ("2.weight", "2.bias")
    terms = [Term(_data(25, 4))]
    H_full = Objective(model.eval(), full, terms, weight_decay=0.1).hessian(full.read(model))
    H_last = Objective(model.eval(), last, terms, weight_decay=0.1).hessian(last.read(model))
    k = last.size
    assert torch.allclose(H_last, H_full[-k:, -k:], atol=1e-10)


def test_closed_form_linear_hessian_matches_hvps():
    torch.manual_seed(1)
    for model in (torch.nn.Linear(4, 3).double(), BinaryLogit(4).double()):
        data = TensorData(torch.randn(30, 4, dtype=torch.float64), torch.randint(0, 2, (30,)))
        space = ParamSpace.of(model, select_parameters(model))
        obj = Objective(model, space, [Term(data), Term(data.subset([0, 1]), -1.0)],
                        weight_decay=0.2, penalized=[space.names[0]], batch_size=8)
        theta = space.read(model)
        assert torch.allclose(obj.hessian(theta), obj.hessian_from_hvps(theta), atol=1e-12)
        H_ref = _reference_hessian(model, space, obj.terms, 0.2, obj.mask)
        assert torch.allclose(obj.hessian(theta), H_ref, atol=1e-10)


def _reference_value_and_grad(model, space, terms, lam, mask):
    theta0 = space.read(model).requires_grad_(True)
    n = sum(t.weight * len(t.data) for t in terms)
    params = {**dict(model.named_parameters()), **space.unflatten(theta0)}
    total = 0.0
    for t in terms:
        out = torch.func.functional_call(model, params, (t.data.X,))
        total = total + t.weight * F.cross_entropy(out, t.data.y, reduction="sum")
    L = total / n + 0.5 * lam * (mask * theta0 * theta0).sum()
    (g,) = torch.autograd.grad(L, theta0)
    return float(L.detach()), g


def test_closed_form_linear_loss_and_gradient_match_autograd():
    torch.manual_seed(2)
    models = (torch.nn.Linear(4, 3).double(), torch.nn.Linear(4, 3, bias=False).double(),
              BinaryLogit(4).double())
    for model in models:
        k = 2 if isinstance(model, BinaryLogit) else 3
        data = TensorData(torch.randn(40, 4, dtype=torch.float64), torch.randint(0, k, (40,)))
        space = ParamSpace.of(model, select_parameters(model))
        obj = Objective(model, space, [Term(data), Term(data.subset([0, 5, 7]), -1.0)],
                        weight_decay=0.2, batch_size=9)
        value, g = obj.value_and_grad(space.read(model))
        ref_value, ref_g = _reference_value_and_grad(model, space, obj.terms, 0.2, obj.mask)
        assert abs(value - ref_value) < 1e-12
        assert torch.allclose(g, ref_g, atol=1e-12)


def test_value_and_grad_of_a_deep_model_matches_autograd():
    model = _tiny_mlp().eval()
    space = ParamSpace.of(model, select_parameters(model))
    terms = [Term(_data(30, 1)), Term(_data(4, 2), -1.0)]
    obj = Objective(model, space, terms, weight_decay=0.3, batch_size=7)
    value, g = obj.value_and_grad(space.read(model))
    ref_value, ref_g = _reference_value_and_grad(model, space, obj.terms, 0.3, obj.mask)
    assert abs(value - ref_value) < 1e-12
    assert torch.allclose(g, ref_g, atol=1e-12)
    assert abs(obj.loss(space.read(model)) - value) < 1e-12


def test_summed_data_hessians_add_up_across_data_sets():
    model = _tiny_mlp().eval()
    space = ParamSpace.of(model, select_parameters(model, 1))
    a, b = _data(20, 6), _data(5, 7)
    theta = space.read(model)
    both = Objective(model, space, [Term(a), Term(b, -1.0)], weight_decay=0.1)
    Ha = Objective(model, space, [Term(a)]).data_hessian(theta)
    Hb = Objective(model, space, [Term(b)]).data_hessian(theta)
    assert torch.allclose(both.hessian_from_data(Ha - Hb), both.hessian(theta), atol=1e-12)


def test_data_hvp_operator_is_the_summed_data_hessian():
    torch.manual_seed(3)
    models = (torch.nn.Linear(4, 3).double(), torch.nn.Linear(4, 3, bias=False).double(),
              BinaryLogit(4).double(), _tiny_mlp().eval())
    for model in models:
        k = 2 if isinstance(model, BinaryLogit) else 3
        data = TensorData(torch.randn(25, 4, dtype=torch.float64), torch.randint(0, k, (25,)))
        space = ParamSpace.of(model, select_parameters(model))
        obj = Objective(model, space, [Term(data), Term(data.subset([1, 4]), -1.0)], batch_size=6)
        theta = space.read(model)
        H = obj._data_hessian_from_hvps(theta, 256)
        op = obj.data_hvp_operator(theta)
        for v in torch.randn(3, space.size, dtype=torch.float64):
            assert torch.allclose(op(v), H @ v, atol=1e-12), type(model).__name__
