"""The dict handlers see as `request.session`, and the change tracking behind it.

Each key is stored as its own JSON string. Comparing those strings with what was loaded tells
exactly which keys a request changed, so a save writes only them: nested mutations are caught,
equal re-assignments cost nothing, and concurrent requests touching different keys merge.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from json.encoder import (  # type: ignore[attr-defined]
    c_make_encoder,
    encode_basestring,
    encode_basestring_ascii,
)
from typing import Any

from .exceptions import SessionError

logger = logging.getLogger("sessionward")

_MUTABLE = (dict, list)


def _encoder(ensure_ascii: bool) -> Callable[[Any], str]:
    """A compact JSON encoder that skips `json.dumps`' Python layers (they run per value).

    Each call gets the C encoder a fresh record of the containers it is inside, as
    `json.dumps` does, so a value that contains itself is a `ValueError` at once, never a
    recursion deep enough to overflow the C stack.
    """
    encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=ensure_ascii, allow_nan=False)
    if c_make_encoder is None:  # an interpreter without the C accelerator
        return encoder.encode
    default = encoder.default
    encode_string = encode_basestring_ascii if ensure_ascii else encode_basestring

    def encode(value: Any) -> str:
        chunks = c_make_encoder({}, default, encode_string, None, ":", ",", False, False, False)
        return "".join(chunks(value, 0))

    return encode


_encode = _encoder(ensure_ascii=False)
_encode_ascii = _encoder(ensure_ascii=True)


def dumps(key: str, value: Any) -> str:
    """Serialise one session value, or raise a `SessionError` that says what to fix.

    The JSON is always valid UTF-8: text holding a lone surrogate (which `request.json()`
    can produce from `"\\ud800"`) is written with escapes instead, as a store needs.
    """
    try:
        text = _encode(value)
        if text.isascii() or _is_utf8(text):
            return text
        return _encode_ascii(value)
    except (TypeError, ValueError, RecursionError) as exc:
        reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise SessionError(
            f"request.session[{key!r}] holds a {type(value).__name__} that cannot be stored "
            f"({reason}); session values must be JSON: str, int, float, bool, None, list, dict"
        ) from None


def loads(text: str) -> Any:
    """Read a stored value back; only JSON `dumps` could have written passes.

    `1e400` and `NaN` would load as floats no save could write back (or response render).
    """
    return _DECODER.decode(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _no_constant(text: str) -> float:
    raise ValueError(f"{text} is not JSON")


def encoded_size(text: str) -> int:
    """Bytes as stored (UTF-8), which is what `max_session_bytes` limits."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_no_constant)


def _check_key(key: object) -> str:
    if not isinstance(key, str):
        raise SessionError(f"session keys must be str, not {type(key).__name__} ({key!r})")
    if not key.isascii() and not _is_utf8(key):
        raise SessionError(f"session key {key!r} is not valid Unicode text (a lone surrogate)")
    return key


@dataclass(slots=True)  # not frozen: built on every save, and a frozen one costs more
class Changes:
    """What a save must do: keys to write (as JSON), keys to delete, and the new total size."""

    write: dict[str, str]
    delete: list[str]
    size: int

    def __bool__(self) -> bool:
        return bool(self.write or self.delete)


class Session(dict[str, Any]):
    """A dict that remembers what was loaded, so the middleware can save only the difference.

    Like Starlette's own `Session`, it exposes `accessed` (read or written) and `modified`
    (written); `cleared` says `clear()` was called, which ends the stored session.

    Only keys that were assigned, or whose list or dict value was handed out by a read, can
    have changed; only those are serialised again when the response starts.
    """

    def __init__(
        self, stored: Mapping[str, str] | None = None, *, max_bytes: int | None = None
    ) -> None:
        self.max_bytes = max_bytes  # checked at each assignment, against what is known
        self._sizes: dict[str, int] | None = None  # bytes of each key, from the first assignment
        self._total = 0
        self._stored: dict[str, str] = {}
        for key, text in (stored or {}).items():
            try:
                dict.__setitem__(self, key, loads(text))
            except (ValueError, RecursionError):
                logger.warning("sessionward: dropped unreadable stored value for key %r", key)
                continue
            self._stored[key] = text
        self._assigned: dict[str, str] = {}  # key -> its JSON when assigned
        self._handed: set[str] = set()  # keys whose list or dict value left by a read
        self._handed_all = False  # items(), values() or copy() handed out every value
        self.accessed = False
        self.modified = False
        self.cleared = False

    # -- change tracking ------------------------------------------------------------------

    @property
    def may_have_changed(self) -> bool:
        """False when nothing was written and no list or dict was handed out: skip the diff."""
        return self.modified or self._handed_all or bool(self._handed)

    def changes(self) -> Changes:
        """Compare each value that may have changed with its stored JSON."""
        baseline = {} if self.cleared else self._stored
        write: dict[str, str] = {}
        for key in self._suspects():
            text = self._current_text(key)
            if baseline.get(key) != text:
                write[key] = text
        delete = [key for key in baseline if not dict.__contains__(self, key)]
        size = sum(
            encoded_size(key) + encoded_size(write.get(key) or self._text_for_size(key))
            for key in dict.keys(self)
        )
        return Changes(write, delete, size)

    def serialised(self) -> dict[str, str]:
        """Every key's current JSON: what a brand-new session must store."""
        return {key: self._current_text(key) for key in dict.keys(self)}

    def mark_saved(self, changes: Changes, *, replace: bool = False) -> None:
        """Take the saved contents as the new baseline; `replace` when `changes` is all of it."""
        if replace or self.cleared:
            self._stored = dict(changes.write)
        else:
            self._stored.update(changes.write)
            for key in changes.delete:
                self._stored.pop(key, None)
        # What was handed out stays handed out: the handler may still change it in place.
        self._assigned.clear()
        self.modified = self.cleared = False

    def _text_for_size(self, key: str) -> str:
        stored = self._stored.get(key)
        return stored if stored is not None and not self.cleared else self._current_text(key)

    def mark_accessed(self) -> None:
        """Starlette's `Session` API: count the session as read (it then varies on the cookie)."""
        self.accessed = True

    def mark_modified(self) -> None:
        """Starlette's `Session` API: treat every value as possibly changed."""
        self.accessed = self.modified = self._handed_all = True

    def _suspects(self) -> list[str]:
        if self._handed_all:
            return [
                key
                for key, value in dict.items(self)
                if key in self._assigned or isinstance(value, _MUTABLE)
            ]
        return [key for key in (*self._assigned, *self._handed) if dict.__contains__(self, key)]

    def _current_text(self, key: str) -> str:
        value = dict.__getitem__(self, key)
        if isinstance(value, _MUTABLE):  # may have been changed in place since
            return dumps(key, value)
        text = self._assigned.get(key)
        if text is None:
            text = self._stored.get(key)
        return text if text is not None else dumps(key, value)

    def _assign(self, key: object, value: Any) -> None:
        name = _check_key(key)
        text = dumps(name, value)
        if self.max_bytes is not None:
            self._check_room(name, text, self.max_bytes)
        self._assigned[name] = text
        self.accessed = self.modified = True
        dict.__setitem__(self, name, value)
        self._hand_out(name, value)  # the caller keeps the list or dict it just stored

    def _check_room(self, name: str, text: str, limit: int) -> None:
        """Refuse, where the handler can catch it, an assignment that takes the session past
        `max_bytes` as far as this request knows it (a list changed in place since it was
        read counts as it was). The store checks again, atomically, when the session is
        saved.

        Counted in characters, which is cheap: UTF-8 takes at most 4 bytes a character, so
        only a session within a quarter of the limit needs its bytes counted.
        """
        if self._sizes is None:
            texts = self._known_texts()
            self._sizes = {key: len(key) + len(known) for key, known in texts.items()}
            self._total = sum(self._sizes.values())
        chars = len(name) + len(text)
        total = self._total - self._sizes.get(name, 0) + chars
        if 4 * total > limit and (size := self._bytes_with(name, text)) > limit:
            raise SessionError(
                f"request.session[{name!r}] would make the session {size} bytes, over "
                f"max_session_bytes={limit}; it was not assigned. Store less in the session "
                "(an id to look up elsewhere) or raise max_session_bytes"
            )
        self._sizes[name], self._total = chars, total

    def _bytes_with(self, name: str, text: str) -> int:
        """The session's size in bytes, as far as known, with `name` set to `text`."""
        known = self._known_texts()
        known[name] = text
        return sum(encoded_size(key) + encoded_size(value) for key, value in known.items())

    def _known_texts(self) -> dict[str, str]:
        """Each key's JSON as last assigned or loaded (not re-serialised: that is for saves)."""
        return {key: self._assigned.get(key) or self._stored[key] for key in dict.keys(self)}

    def _forget_size(self, key: str) -> None:
        if self._sizes is not None and key in self._sizes:
            self._total -= self._sizes.pop(key)

    def _hand_out(self, key: str, value: Any) -> Any:
        if isinstance(value, _MUTABLE):
            self._handed.add(key)
        return value

    # -- writes ---------------------------------------------------------------------------

    def __setitem__(self, key: str, value: Any) -> None:
        self._assign(key, value)

    def __delitem__(self, key: str) -> None:
        dict.__delitem__(self, key)
        self._forget_size(key)
        self.accessed = self.modified = True

    def clear(self) -> None:
        dict.clear(self)
        self._assigned.clear()
        self._handed.clear()
        if self._sizes is not None:
            self._sizes, self._total = {}, 0
        self.accessed = self.modified = self.cleared = True

    def pop(self, key: str, *default: Any) -> Any:
        self.accessed = True
        if dict.__contains__(self, key):
            self.modified = True
            self._forget_size(key)
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[str, Any]:
        item = dict.popitem(self)
        self._forget_size(item[0])
        self.accessed = self.modified = True
        return item

    def setdefault(self, key: str, default: Any = None) -> Any:
        if not dict.__contains__(self, key):
            self._assign(key, default)
        self.accessed = True
        return self._hand_out(key, dict.__getitem__(self, key))

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self._assign(key, value)

    def __ior__(self, other: Any, /) -> Session:  # type: ignore[override,misc]
        self.update(other)
        return self

    # -- reads: a list or dict handed out may be changed in place -------------------------

    def __getitem__(self, key: str) -> Any:
        self.accessed = True
        return self._hand_out(key, dict.__getitem__(self, key))

    def get(self, key: str, default: Any = None) -> Any:
        self.accessed = True
        if not dict.__contains__(self, key):
            return default
        return self._hand_out(key, dict.__getitem__(self, key))

    def __contains__(self, key: object) -> bool:
        self.accessed = True
        return dict.__contains__(self, key)

    def __iter__(self) -> Iterator[str]:
        # Overriding this also routes dict(session), {**session} and session | x through
        # keys() and __getitem__, so values copied that way are seen as handed out.
        self.accessed = True
        return dict.__iter__(self)

    def __len__(self) -> int:
        self.accessed = True
        return dict.__len__(self)

    def keys(self) -> Any:
        self.accessed = True
        return dict.keys(self)

    def values(self) -> Any:
        self.accessed = self._handed_all = True
        return dict.values(self)

    def items(self) -> Any:
        self.accessed = self._handed_all = True
        return dict.items(self)

    def copy(self) -> dict[str, Any]:
        self.accessed = self._handed_all = True
        return dict(dict.items(self))

    def __repr__(self) -> str:
        return f"Session({dict.__repr__(self)})"
