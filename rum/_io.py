"""Reading and writing the files the command line works on.

Models are saved as a ``state_dict`` (``torch.save(model.state_dict(), path)``,
read back with ``weights_only=True``, or a ``.safetensors`` file when the
``safetensors`` package is installed) plus a factory ``module:function`` that
builds the architecture. Data sets are ``.npz`` files with arrays ``X`` and
``y``, or ``.pt`` files holding ``{"X": tensor, "y": tensor}`` or an
``(X, y)`` pair. Nothing here unpickles arbitrary objects.

These functions only turn files into arrays and modules; :func:`rum._data.as_data`
still does all the checking of the data itself.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rum._data import TensorData, as_data
from rum.exceptions import InvalidFileError

__all__ = [
    "load_data",
    "save_data",
    "load_state_dict",
    "save_state_dict",
    "resolve_factory",
    "build_model",
    "load_model",
]

DATA_SUFFIXES = (".npz", ".pt", ".pth")
MODEL_SUFFIXES = (".pt", ".pth", ".safetensors")


def _existing(path: str | Path, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise InvalidFileError(f"{what}: no such file {str(p)!r}. Check the path.")
    if p.is_dir():
        raise InvalidFileError(f"{what}: {str(p)!r} is a directory; give the path of a file.")
    return p


# -- data ---------------------------------------------------------------------------------------
def load_data(path: str | Path, name: str = "data", *, x_key: str = "X", y_key: str = "y") -> TensorData:
    """Read a data set from a ``.npz`` or ``.pt`` file.

    Args:
        path: the file. ``.npz``: arrays ``x_key`` and ``y_key``. ``.pt``: a
            dict with those keys or an ``(X, y)`` pair of tensors, read with
            ``torch.load(weights_only=True)``.
        name: what the data is (``"forget"``...), used in error messages.
        x_key, y_key: the names of the feature and label arrays.

    Raises:
        InvalidFileError: the file is missing, unreadable or lacks the arrays.

    Examples:
        >>> import numpy as np, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "forget.npz")
        >>> np.savez(path, X=np.zeros((3, 2)), y=np.array([0, 1, 1]))
        >>> load_data(path, "forget").y.tolist()
        [0, 1, 1]
    """
    p = _existing(path, name)
    suffix = p.suffix.lower()
    if suffix == ".npz":
        _check_npz_sizes(p, (x_key, y_key), name)
        try:
            with np.load(p, allow_pickle=False) as f:
                keys = list(f.keys())
                missing = [k for k in (x_key, y_key) if k not in keys]
                if missing:
                    raise InvalidFileError(
                        f"{name}: {str(p)!r} has arrays {keys} but not {missing}. Save it with "
                        f"np.savez(path, {x_key}=features, {y_key}=labels), or name the arrays "
                        "with --x-key/--y-key."
                    )
                X, y = f[x_key], f[y_key]
        except (ValueError, OSError, MemoryError) as err:
            raise InvalidFileError(
                f"{name}: could not read {str(p)!r} as an .npz file ({_first_line(err)}). "
                "Object arrays are not accepted; save numeric arrays with np.savez."
            ) from None
        return as_data((X, y), name)
    if suffix in (".pt", ".pth"):
        obj = _torch_load(p, name)
        if isinstance(obj, Mapping):
            missing = [k for k in (x_key, y_key) if k not in obj]
            if missing:
                raise InvalidFileError(
                    f"{name}: {str(p)!r} holds a dict with keys {sorted(map(str, obj))} but not "
                    f"{missing}. Save it with torch.save({{'{x_key}': X, '{y_key}': y}}, path), "
                    "or name the keys with --x-key/--y-key."
                )
            return as_data((obj[x_key], obj[y_key]), name)
        if isinstance(obj, (tuple, list)) and len(obj) == 2:
            return as_data((obj[0], obj[1]), name)
        raise InvalidFileError(
            f"{name}: {str(p)!r} holds a {type(obj).__name__}; expected a dict "
            f"{{'{x_key}': X, '{y_key}': y}} or an (X, y) pair of tensors."
        )
    raise InvalidFileError(
        f"{name}: cannot read {str(p)!r}: use a .npz file (np.savez(path, X=..., y=...)) or a .pt "
        "file (torch.save({'X': X, 'y': y}, path))."
    )


def _check_npz_sizes(p: Path, keys: tuple[str, ...], name: str) -> None:
    """Refuse an .npz whose arrays declare more bytes than the file holds (before allocating them)."""
    import zipfile

    try:
        with zipfile.ZipFile(p) as z:
            for key in keys:
                member = f"{key}.npy"
                if member not in z.namelist():
                    continue  # reported with the arrays' names below
                info = z.getinfo(member)
                with z.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(f)
                    header = f.tell()
                declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if declared > info.file_size - header:
                    raise InvalidFileError(
                        f"{name}: {str(p)!r} declares a {key!r} array of shape {shape} "
                        f"({declared:,} bytes) but holds {info.file_size - header:,} bytes; the "
                        "file is damaged or not what it says. Save it again with np.savez."
                    )
    except InvalidFileError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise InvalidFileError(
            f"{name}: could not read {str(p)!r} as an .npz file ({_first_line(err)}). Save numeric "
            "arrays with np.savez."
        ) from None


def save_data(data: Any, path: str | Path) -> Path:
    """Write a data set as ``.npz`` (arrays ``X``, ``y``) or ``.pt`` (a dict of tensors)."""
    d = as_data(data, "data", allow_empty=True)
    p = Path(path)
    if p.suffix.lower() == ".npz":
        X, y = d.numpy()
        np.savez(p, X=X, y=y)
    else:
        torch.save({"X": d.X, "y": d.y}, p)
    return p


def _torch_load(p: Path, name: str) -> Any:
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError...
        raise InvalidFileError(
            f"{name}: could not read {str(p)!r} safely with torch.load(weights_only=True) "
            f"({_first_line(err)}). Save plain tensors: a model's state_dict "
            "(torch.save(model.state_dict(), path)) or a dict of tensors, not a pickled object."
        ) from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# -- models -------------------------------------------------------------------------------------
def load_state_dict(path: str | Path, name: str = "model") -> dict[str, torch.Tensor]:
    """Read a ``state_dict`` from ``.pt``/``.pth`` (``weights_only=True``) or ``.safetensors``.

    A checkpoint dict with a ``"state_dict"`` entry is accepted too.
    """
    p = _existing(path, name)
    if p.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise InvalidFileError(
                f"{name}: reading {str(p)!r} needs the safetensors package: pip install safetensors."
            ) from None
        try:
            return dict(load_file(str(p), device="cpu"))
        except Exception as err:
            raise InvalidFileError(
                f"{name}: could not read {str(p)!r} as safetensors ({_first_line(err)})."
            ) from None
    obj = _torch_load(p, name)
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InvalidFileError(
            f"{name}: {str(p)!r} does not hold a state_dict (a dict of tensors), it holds a "
            f"{type(obj).__name__}. Save the weights with torch.save(model.state_dict(), path)."
        )
    return dict(obj)


def save_state_dict(model: torch.nn.Module, path: str | Path) -> Path:
    """Write ``model.state_dict()`` to ``.pt`` (``torch.save``) or ``.safetensors``."""
    p = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if p.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import save_file
        except ImportError:
            raise InvalidFileError(
                f"writing {str(p)!r} needs the safetensors package: pip install safetensors "
                "(or use a .pt file)."
            ) from None
        save_file(state, str(p))
    else:
        torch.save(state, p)
    return p


def resolve_factory(spec: str, argument: str = "--arch") -> Any:
    """Import the callable named by ``"package.module:function"`` or ``"path/file.py:function"``.

    The current directory is searched first, as ``python -m`` does.

    Examples:
        >>> resolve_factory("rum.demo:make_mlp").__name__
        'make_mlp'
    """
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise InvalidFileError(
            f"{argument}={spec!r} must have the form 'module:function' (for example "
            "'rum.demo:make_mlp' or 'my_models.py:build') naming a function that returns the "
            "untrained model."
        )
    module_name, _, attr = spec.partition(":")
    if module_name.endswith(".py"):
        file = Path(module_name)
        if not file.is_file():
            raise InvalidFileError(f"{argument}={spec!r}: no such file {module_name!r}.")
        mod_spec = importlib.util.spec_from_file_location(f"_rum_arch_{file.stem}", file)
        module = importlib.util.module_from_spec(mod_spec)  # type: ignore[arg-type]
        mod_spec.loader.exec_module(module)  # type: ignore[union-attr]
    else:
        cwd = str(Path.cwd())
        added = cwd not in sys.path
        if added:
            sys.path.insert(0, cwd)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            raise InvalidFileError(
                f"{argument}={spec!r}: cannot import module {module_name!r} ({err}). Run rum from "
                "the directory that contains it, add that directory to PYTHONPATH, or give the "
                "file path ('path/to/models.py:function')."
            ) from None
        finally:
            if added and cwd in sys.path:
                sys.path.remove(cwd)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            public = sorted(n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n)))
            raise InvalidFileError(
                f"{argument}={spec!r}: module {module_name!r} has no attribute {attr!r}. "
                f"Callables it defines: {', '.join(public[:15]) or 'none'}."
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise InvalidFileError(f"{argument}={spec!r} names a {type(obj).__name__}, not a function.")
    return obj


def build_model(spec: str, kwargs: Mapping[str, Any] | None = None, argument: str = "--arch") -> torch.nn.Module:
    """Call the factory named by ``spec`` with ``kwargs`` and check it returns an ``nn.Module``."""
    factory = resolve_factory(spec, argument)
    try:
        model = factory(**dict(kwargs or {}))
    except TypeError as err:
        raise InvalidFileError(
            f"{argument}={spec!r}: calling it with {dict(kwargs or {})} failed ({_first_line(err)}). "
            "Pass its keyword arguments as JSON with --arch-kwargs."
        ) from None
    if not isinstance(model, torch.nn.Module):
        raise InvalidFileError(
            f"{argument}={spec!r} returned a {type(model).__name__}; it must return a "
            "torch.nn.Module (the untrained architecture)."
        )
    return model


def load_model(
    path: str | Path,
    arch: str,
    arch_kwargs: Mapping[str, Any] | str | None = None,
    name: str = "model",
) -> torch.nn.Module:
    """Build the architecture with ``arch`` and load the weights saved at ``path`` (strictly).

    Args:
        path: a ``state_dict`` saved with ``torch.save`` (``.pt``) or safetensors.
        arch: ``"module:function"`` returning the untrained model.
        arch_kwargs: keyword arguments for the factory (a mapping or a JSON object string).
        name: what the model is, used in error messages.

    Raises:
        InvalidFileError: with the missing, unexpected and mis-shaped keys when
            the weights do not match the architecture.

    Examples:
        >>> import torch, tempfile, os
        >>> from rum.demo import make_mlp
        >>> path = os.path.join(tempfile.mkdtemp(), "model.pt")
        >>> torch.save(make_mlp(hidden=8).state_dict(), path)
        >>> model = load_model(path, "rum.demo:make_mlp", '{"hidden": 8}')
        >>> model[0].out_features
        8
    """
    kwargs = parse_json_object(arch_kwargs, "--arch-kwargs")
    state = load_state_dict(path, name)
    model = build_model(arch, kwargs)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_few(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches {_few(shapes)}")
        hint = ""
        if unexpected and all(k.startswith("module.") for k in unexpected):
            hint = " The keys start with 'module.': the weights were saved from DataParallel; save model.module.state_dict() instead."
        raise InvalidFileError(
            f"{name}: the weights in {str(path)!r} do not fit the model built by {arch!r}"
            f"{' with ' + json.dumps(kwargs) if kwargs else ''}: {'; '.join(parts)}. Check --arch "
            f"and --arch-kwargs against the code that trained the model.{hint}"
        )
    model.load_state_dict(state, strict=True)
    model.eval()
    return model


def _few(items: list[str], n: int = 5) -> str:
    shown = ", ".join(items[:n])
    return f"[{shown}{', ...' if len(items) > n else ''}] ({len(items)})"


def parse_json_object(value: Mapping[str, Any] | str | None, argument: str) -> dict:
    """A dict from a mapping, ``None`` or a JSON object string (CLI arguments)."""
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    try:
        obj = json.loads(value)
    except json.JSONDecodeError as err:
        raise InvalidFileError(
            f"{argument}={value!r} is not valid JSON ({err.msg}). Write a JSON object, for "
            'example \'{"hidden": 64}\'.'
        ) from None
    if not isinstance(obj, dict):
        raise InvalidFileError(f"{argument} must be a JSON object like '{{\"hidden\": 64}}', got {value!r}.")
    return obj
