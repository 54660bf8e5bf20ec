"""The session dict: Starlette-compatible flags and exact change tracking."""

from __future__ import annotations

import copy

import pytest

from sessionward import Session, SessionError
from sessionward.session import dumps


def loaded(**values: object) -> Session:
    return Session({key: dumps(key, value) for key, value in values.items()})


def test_a_loaded_session_has_no_changes() -> None:
    session = loaded(a=1, cart=[1, 2])
    assert dict(session) == {"a": 1, "cart": [1, 2]}
    assert not session.changes()
    assert not session.modified


def test_setting_a_key_is_a_change_and_marks_modified() -> None:
    session = loaded(a=1)
    session["b"] = {"x": [1]}
    changes = session.changes()
    assert changes.write == {"b": '{"x":[1]}'}
    assert changes.delete == []
    assert session.modified
    assert session.accessed


def test_an_equal_assignment_is_not_a_change() -> None:
    session = loaded(a=1, cart=[1, 2])
    session["a"] = 1
    session["cart"] = [1, 2]
    assert not session.changes()


def test_nested_mutation_is_detected() -> None:
    session = loaded(cart=[1, 2], prefs={"theme": "dark"})
    session["cart"].append(3)
    session.get("prefs")["theme"] = "light"
    assert session.changes().write == {"cart": "[1,2,3]", "prefs": '{"theme":"light"}'}


@pytest.mark.parametrize(
    "reach",
    [
        lambda s: s.values(),
        lambda s: [v for _, v in s.items()],
        lambda s: dict(s).values(),
        lambda s: {**s}.values(),
        lambda s: s.copy().values(),
        lambda s: (s | {}).values(),
        lambda s: copy.deepcopy(s).values() and [s["cart"]],
    ],
)
def test_mutation_through_any_read_path_is_detected(reach: object) -> None:
    session = loaded(cart=[1])
    for value in reach(session):  # type: ignore[operator]
        if isinstance(value, list):
            value.append(2)
    assert session.changes().write == {"cart": "[1,2]"}


def test_deletions_are_changes() -> None:
    session = loaded(a=1, b=2, c=3)
    del session["a"]
    session.pop("b")
    session.pop("missing", None)
    assert session.changes().delete == ["a", "b"]


def test_update_setdefault_and_ior_are_tracked() -> None:
    session = loaded()
    session.update({"a": 1}, b=2)
    session.setdefault("c", [])
    session |= {"d": 4}
    assert session.changes().write == {"a": "1", "b": "2", "c": "[]", "d": "4"}


def test_clear_marks_cleared_and_drops_the_baseline() -> None:
    session = loaded(a=1)
    session.clear()
    session["a"] = 1
    assert session.cleared
    assert session.changes().write == {"a": "1"}  # a new session holds everything


def test_unserialisable_values_raise_at_once_naming_the_key() -> None:
    session = Session()
    with pytest.raises(SessionError, match=r"request.session\['when'\].*object"):
        session["when"] = object()
    with pytest.raises(SessionError, match="'nan'"):
        session["nan"] = float("nan")
    with pytest.raises(SessionError, match="keys must be str"):
        session[1] = "x"  # type: ignore[index]
    assert "when" not in session


def test_a_nested_unserialisable_value_raises_when_changes_are_computed() -> None:
    session = loaded(cart=[])
    session["cart"].append({1, 2})
    with pytest.raises(SessionError, match="'cart'"):
        session.changes()


def test_reading_marks_accessed_but_not_modified() -> None:
    session = loaded(a=1)
    assert not session.accessed
    assert session["a"] == 1
    assert session.accessed
    assert not session.modified


def test_the_size_counts_keys_and_json() -> None:
    session = loaded(ab="xyz")
    assert session.changes().size == len("ab") + len('"xyz"')


def test_unreadable_stored_values_are_dropped_not_fatal() -> None:
    session = Session({"good": "1", "bad": "{nope"})
    assert dict(session) == {"good": 1}
    assert not session.changes()


def test_mark_saved_makes_the_current_contents_the_baseline() -> None:
    session = loaded(a=1)
    session["b"] = [2]
    session.mark_saved(session.changes())
    assert not session.changes()
    assert not session.modified


def test_lone_surrogates_are_stored_escaped_and_read_back() -> None:
    session = Session()
    session["text"] = "a\ud800b"
    text = session.changes().write["text"]
    text.encode("utf-8")  # a store can take it
    assert Session({"text": text})["text"] == "a\ud800b"
    session["ok"] = "caf\u00e9"
    assert session.changes().write["ok"] == '"caf\u00e9"'


def test_a_lone_surrogate_key_is_refused() -> None:
    with pytest.raises(SessionError, match="not valid Unicode"):
        Session()["\udcff"] = 1


def test_mark_modified_treats_every_value_as_changed() -> None:
    session = loaded(cart=[1])
    list.append(dict.__getitem__(session, "cart"), 2)  # changed without a tracked read
    session.mark_modified()
    assert session.modified
    assert session.changes().write == {"cart": "[1,2]"}


def test_values_handed_out_before_a_save_are_still_watched_after_it() -> None:
    session = loaded(cart=[])
    cart = session["cart"]
    session.mark_saved(session.changes())
    cart.append(1)
    assert session.changes().write == {"cart": "[1]"}


def test_a_value_that_contains_itself_is_refused_as_circular() -> None:
    """Found at once, not by recursing until the limit (or the C stack) runs out."""
    cart: list[object] = []
    cart.append(cart)
    with pytest.raises(SessionError, match="Circular reference"):
        dumps("cart", cart)


@pytest.mark.parametrize("remove", ["del", "pop", "popitem", "clear"])
def test_removing_a_key_makes_room_for_the_next_assignment(remove: str) -> None:
    session = Session({"big": '"' + "x" * 80 + '"'}, max_bytes=100)
    with pytest.raises(SessionError, match="over max_session_bytes=100"):
        session["more"] = "y" * 30
    assert "more" not in session
    if remove == "del":
        del session["big"]
    elif remove == "pop":
        session.pop("big")
    elif remove == "popitem":
        session.popitem()
    else:
        session.clear()
    session["more"] = "y" * 30  # fits now
    assert session["more"] == "y" * 30


def test_replacing_a_value_counts_only_the_new_one() -> None:
    session = Session({"a": '"' + "x" * 80 + '"'}, max_bytes=100)
    session["a"] = "y" * 90  # 1 + 92 bytes: the old 82 are not counted twice
    with pytest.raises(SessionError):
        session["a"] = "z" * 99
