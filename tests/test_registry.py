"""The unlearner registry: registration, lookup, did-you-mean errors."""

from __future__ import annotations

import pytest

import rum
from rum.exceptions import InvalidParameterError, UnknownUnlearnerError
from rum.unlearners.registry import UNLEARNERS, make_unlearner


def test_builtins_are_registered_under_their_names():
    names = rum.list_unlearners()
    for name in ["noop", "finetune", "neggrad", "neggrad+", "random-label", "retrain"]:
        assert name in names
        assert rum.get_unlearner(name).name == name
    assert names == sorted(names)
    assert rum.list_unlearners("neggrad*") == ["neggrad", "neggrad+"]


def test_unknown_name_lists_known_names_and_suggests_the_closest():
    with pytest.raises(UnknownUnlearnerError) as info:
        rum.get_unlearner("fintune")
    msg = str(info.value)
    assert "Did you mean 'finetune'?" in msg
    assert "neggrad+" in msg and "random-label" in msg
    assert isinstance(info.value, ValueError)


def test_register_decorator_duplicate_and_force():
    try:

        @rum.register_unlearner("test-dup")
        class A(rum.Unlearner):
            def _unlearn(self, model, forget, retain, ctx):
                return model

        assert rum.get_unlearner("test-dup") is A and A.name == "test-dup"
        with pytest.raises(InvalidParameterError, match="already registered"):

            @rum.register_unlearner("test-dup")
            class B(rum.Unlearner):
                def _unlearn(self, model, forget, retain, ctx):
                    return model

        @rum.register_unlearner("test-dup", force=True)
        class C(rum.Unlearner):
            def _unlearn(self, model, forget, retain, ctx):
                return model

        assert rum.get_unlearner("test-dup") is C
    finally:
        UNLEARNERS.unregister("test-dup")


def test_register_rejects_non_unlearners():
    with pytest.raises(InvalidParameterError, match="subclass of rum.Unlearner"):
        rum.register_unlearner("bad")(object)


def test_make_unlearner_accepts_name_class_and_instance():
    ft = rum.get_unlearner("finetune")
    assert make_unlearner("finetune", {"epochs": 2}).epochs == 2
    assert make_unlearner(ft).epochs == 5
    inst = ft(lr=0.5)
    assert make_unlearner(inst) is inst
    assert make_unlearner(inst, {"epochs": 9}).lr == 0.5
    with pytest.raises(rum.exceptions.UnknownOptionError, match="Did you mean 'epochs'"):
        make_unlearner("finetune", {"epoch": 2})
    with pytest.raises(InvalidParameterError, match="registered name"):
        make_unlearner(3.5)


def test_params_round_trip_through_get_clone_and_repr():
    for name in rum.list_unlearners():
        cls = rum.get_unlearner(name)
        u = cls(**cls._test_params())
        assert u.clone().get_params() == u.get_params()
        assert u.clone() == u
        assert repr(u).startswith(cls.__name__ + "(")
        u.validate_params()


@pytest.mark.parametrize(
    "name, params, words",
    [
        ("finetune", {"epochs": 0}, "'epochs' parameter of Finetune must be an int in [1, inf). Got 0"),
        ("finetune", {"lr": -1.0}, "'lr' parameter of Finetune must be a float in (0, inf)"),
        ("finetune", {"optimizer": "rmsprop"}, "one of 'sgd', 'adam'"),
        ("neggrad+", {"alpha": 1.5}, "'alpha' parameter of NegGradPlus must be a float in (0, 1)"),
        ("random-label", {"batch_size": 2.5}, "'batch_size'"),
        ("retrain", {"train_fn": 3}, "'train_fn' parameter of Retrain must be a callable or None"),
    ],
)
def test_bad_hyper_parameters_name_the_parameter_and_range(name, params, words):
    u = rum.get_unlearner(name)(**params)
    with pytest.raises(InvalidParameterError) as info:
        u.validate_params()
    assert words in str(info.value)
