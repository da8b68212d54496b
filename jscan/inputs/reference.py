"""The config schema written out for people: the config guide's reference table
(docs/guide/config.md) and the commented template of `jscan init`, both made from
`jscan.inputs.schema.schema` (one place for each key's check, default, unit and meaning)."""

import json
import textwrap
import tomllib

from jscan.inputs.config import DEMO_CONFIG
from jscan.inputs.schema import REQUIRED, SECTION_DOCS, Key, optional_section, schema

TABLE_START = "<!-- config reference: made by jscan.inputs.reference.reference_table -->"
TABLE_END = "<!-- end of config reference -->"
KIND_DEFAULTS = {"probe": "gaussian", "sample": "phantom", "scan": "raster"}


def toml_value(value) -> str:
    """``value`` (bool, string, number, list, dict as an inline table) written as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    if hasattr(value, "item"):  # a numpy scalar, whose repr is np.float64(...)
        value = value.item()
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(float(value))  # round-trips; nan and inf are TOML's nan and inf
    raise TypeError(f"no TOML for {type(value).__name__} {value!r}")


def _kinds(key: Key) -> str:
    return "all" if key.kinds is None else ", ".join(key.kinds)


def _default(key: Key) -> str:
    if key.default is REQUIRED:
        return "required"
    return "none" if key.default is None else f"`{toml_value(key.default)}`"


def reference_table() -> str:
    """The Markdown table of every config key: key, the kinds it applies to, default, unit
    and meaning, in schema order (docs/guide/config.md holds it between `TABLE_START` and
    `TABLE_END`)."""
    rows = ["| key | for kinds | default | unit | meaning |", "|---|---|---|---|---|"]
    for section, keys in schema().items():
        for name, key in keys.items():
            doc = key.doc.replace("|", "\\|")
            rows.append(
                f"| `{section}.{name}` | {_kinds(key)} | {_default(key)} | {key.unit or '-'} "
                f"| {doc} |"
            )
    return "\n".join(rows) + "\n"


def _value(section: str, name: str, key: Key, demo: dict):
    """The template's value of a key: the demo's, else its default, else its example."""
    if name in demo.get(section, {}):
        return demo[section][name]
    if key.default is not REQUIRED and key.default is not None:
        return key.default
    return key.example


def template(kinds: dict[str, str] | None = None) -> str:
    """A commented TOML config with every key of every kind (`jscan init`).

    kinds: section -> kind for "probe", "sample" and "scan" (default gaussian, phantom,
    raster). The keys of those kinds are set (to the built-in demo's values, else their
    defaults, else an example); the keys of the other kinds are written commented out,
    each under its meaning and unit. With the default kinds it loads as it is; a "file" or
    "zarr" kind names a file (probe.npy, sample.npy, positions.npy) to put beside it.
    """
    chosen = {**KIND_DEFAULTS, **(kinds or {})}
    demo = tomllib.loads(DEMO_CONFIG)
    lines = [
        "# jscan config (TOML), written by `jscan init`. Lengths are in metres.",
        "# Check it with `jscan check FILE`; run it with `jscan simulate FILE --out STORE`.",
        "# Keys of the kinds not chosen are commented out; set a section's kind to use them.",
    ]
    for section, keys in schema().items():
        optional = " (optional section)" if optional_section(section) else ""
        lines += ["", f"[{section}]  # {SECTION_DOCS.get(section, '')}{optional}"]
        kind = chosen.get(section)
        for name, key in keys.items():
            unit = f" [{key.unit}]" if key.unit else ""
            applies = key.kinds is None or kind in key.kinds
            where = "" if key.kinds is None else f" (kind {' or '.join(key.kinds)})"
            choices = getattr(key.check, "choices", None)
            options = f" ({' | '.join(choices)})" if choices else ""
            text = f"{name}{unit}{where}: {key.doc}{options}"
            lines += textwrap.wrap(text, 92, initial_indent="# ", subsequent_indent="#   ")
            value = kind if name == "kind" and kind else _value(section, name, key, demo)
            if isinstance(value, dict) and set(value) <= set(key.kinds or ()):  # one per kind
                value = value.get(kind, next(iter(value.values())))
            off = not applies or (key.default is None and name not in demo.get(section, {}))
            shown = "..." if value is None else toml_value(value)
            lines.append(f"{'# ' if off else ''}{name} = {shown}")
    return "\n".join(lines) + "\n"
