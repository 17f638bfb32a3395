"""The device check: refuse to plan silently for another device than a profile was measured on."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from simlat.errors import SimlatError
from simlat.profiles.schema import ServiceProfile, load_profile

if TYPE_CHECKING:
    from simlat.config.service import ProfileService


class ProfileDeviceWarning(UserWarning):
    """An experiment plans for another device than the profile was measured on."""


def _tokens(name: str) -> set[str]:
    return {t for t in "".join(c.lower() if c.isalnum() else " " for c in name).split() if t not in {"nvidia"}}


def device_mismatch(profile: ServiceProfile, device: str | None) -> str | None:
    """A message when ``device`` (an experiment's) does not name the profile's device, else None.

    Matching is by words: "h100" matches "NVIDIA H100 80GB HBM3"; "cpu" matches any CPU profile.
    """
    if not device:
        return None
    prov = profile.provenance
    want = _tokens(device)
    have = _tokens(prov.device_name) | {prov.device}
    if want and want <= have:
        return None
    return f"device differs: experiment={device!r}, profile={prov.device_name!r} ({prov.device})"


def check_device(profile: ServiceProfile, device: str | None, label: str, stacklevel: int = 4) -> None:
    """Warn (:class:`ProfileDeviceWarning`) when ``device`` is not the device of ``profile``."""
    msg = device_mismatch(profile, device)
    if msg:
        warnings.warn(f"{label}: {msg}", ProfileDeviceWarning, stacklevel=stacklevel)


def warn_device_mismatch(cfg: ProfileService, device: str | None, source: str = "experiment") -> None:
    """Warn when ``device`` is not the device of ``cfg``'s profile (called when an experiment is
    loaded); a profile that cannot be read is left to the engine's error."""
    try:
        profile = load_profile(cfg.path)
    except SimlatError:
        return
    check_device(profile, device, f"{source}: service profile {cfg.path.name}")
