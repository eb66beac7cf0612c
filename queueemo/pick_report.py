"""A pick as JSON-ready data (``next --json``) or as text that says why (``next --explain``)."""

from __future__ import annotations

import numpy as np

from queueemo import picker


def pick_record(pick: picker.Pick) -> dict[str, object]:
    """A pick as JSON-ready data (``next --json``)."""
    def points(array: np.ndarray) -> list[list[float]]:
        return [[round(float(a), 4), round(float(v), 4)] for a, v in array]

    def number(value: float) -> float | None:
        return round(value, 4) if np.isfinite(value) else None

    def terms(values: tuple[float, float, float, float]) -> dict[str, float]:
        return dict(zip(("emotion", "loudness", "brightness", "onsets"), (round(t, 4) for t in values),
                        strict=True))

    return {
        "uri": pick.uri,
        "path": pick.path,
        "artist": pick.artist,
        "distance": round(pick.distance, 4),
        "basis": pick.basis,
        "terms": terms(pick.terms),
        "loudness_jump_lu": number(pick.jumps[0]),
        "brightness_jump_octaves": number(pick.jumps[1]),
        "onset_jump_octaves": number(pick.jumps[2]),
        "tied": pick.tied,
        "relaxed": list(pick.relaxed),
        "fallback": pick.fallback,
        "unanalysed": pick.unanalysed or None,
        "reference": pick.reference,
        "tail": points(pick.tail),
        "forecast": points(pick.forecast),
        "top": [{"uri": r.uri, "artist": r.artist, "distance": round(r.distance, 4),
                 "terms": terms(r.terms)} for r in pick.top],
        "excluded": [{"uri": r.uri, "distance": round(r.distance, 4), "reason": r.reason.label}
                     for r in pick.excluded],
        "excluded_counts": pick.excluded_counts,
    }


def _terms_text(terms: tuple[float, float, float, float]) -> str:
    emotion, loudness, brightness, onsets = terms
    return (f"= emotion {emotion:.3f} + loudness {loudness:.3f} + brightness {brightness:.3f} "
            f"+ onsets {onsets:.3f}")


def explain_pick(pick: picker.Pick) -> str:
    """A pick and why, as text for ``next --explain``."""
    def point(a: float, v: float) -> str:
        return f"(arousal {a:+.2f}, valence {v:+.2f})"

    if pick.basis == "seed":
        return f"{pick.uri}\n  seed: nothing to follow, so a random allowed track"
    if pick.basis == "given":
        follows = [f"  follows   {pick.reference}"] if pick.reference else []
        return "\n".join([pick.uri, *follows, f"  given     {pick.given}: queued as named, not picked"])
    lines = [pick.uri, f"  follows   {pick.reference}"]
    if len(pick.tail):
        tail = " ".join(f"{a:+.2f}/{v:+.2f}" for a, v in pick.tail)
        lines.append(f"  its tail  (arousal/valence, {len(pick.tail)} windows before its ending) {tail}")
    if pick.basis == "unanalysed":
        lines.append(f"  {pick.reference} is {pick.unanalysed or 'not analysed'}: nothing to measure "
                     "from, so a random "
                     "allowed track (no distances)")
    else:
        label = "target   " if pick.basis == "target" else "forecast "
        lines.append(f"  {label} {point(*pick.forecast.mean(axis=0))}")
        lines.append(f"  distance  {pick.distance:.3f} {_terms_text(pick.terms)}")
        jumps = [f"{name} {value:{form}} {unit}" for name, value, form, unit in zip(
            ("loudness", "brightness", "onsets"), pick.jumps, ("+.1f", "+.2f", "+.2f"),
            ("LU", "octaves", "octaves"), strict=True) if np.isfinite(value)]
        if jumps:
            lines.append(f"  jump      {', '.join(jumps)} (its opening against the ending it follows)")
        if pick.tied > 1:
            lines.append(f"  drawn at random among {pick.tied} near-ties (within the tie tolerance "
                         "of the best distance)")
        for rank, row in enumerate(pick.top, start=1):
            lines.append(f"  #{rank} {row.distance:.3f} {_terms_text(row.terms)}  {row.uri}  "
                         f"[{row.artist or '?'}]")
    for row in pick.excluded:
        distance = "" if pick.basis == "unanalysed" else f"{row.distance:.3f}  "
        lines.append(f"  excluded {distance}{row.uri}: {row.reason.label}")
    for rule in pick.relaxed:
        lines.append(f"  relaxed   {rule} (the rules left too few candidates)")
    if pick.fallback:
        lines.append("  fallback  the repeat window had consumed the library: least recently played "
                     "tracks allowed")
    if pick.excluded_counts:
        counts = ", ".join(f"{n} {why}" for why, n in sorted(pick.excluded_counts.items()))
        lines.append(f"  excluded in all: {counts}")
    return "\n".join(lines)
