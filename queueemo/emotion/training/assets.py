"""Write trained weights with their self-describing JSON (read back through ``queueemo.assets``)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import torch

from queueemo.assets import MEL_BASIS_FILE
from queueemo.audio import compute_mel_basis


def save_asset(out_dir: Path, name: str, state: dict, info: dict, *, as_numpy: bool = False) -> dict:
    """Write ``name.pt`` (or ``name.npz`` for weights run in numpy) and ``name.json``.

    The version is ``name-`` plus a hash of the weights. The mel filter bank the features were
    computed with is written beside them (``mel_basis.npy``).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    if as_numpy:
        np.savez(buffer, **{key: value.detach().cpu().numpy() for key, value in state.items()})
    else:
        torch.save(state, buffer)
    payload = buffer.getvalue()
    np.save(out_dir / MEL_BASIS_FILE, compute_mel_basis())
    info = {"version": f"{name}-{hashlib.sha256(payload).hexdigest()[:12]}", **info}
    (out_dir / f"{name}.{'npz' if as_numpy else 'pt'}").write_bytes(payload)
    (out_dir / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info
