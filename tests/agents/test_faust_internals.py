"""The one door to Faust's, mode's and aiokafka's private names (``agents.fast_path``): every
one is listed and checked at the worker's start-up, no other module uses one, and the Faust
code our batch path redoes in bulk is the code we copied.

How each extension behaves is tested in ``test_fast_path.py`` (consumer, conductor, consumer
thread), ``test_bulk_changelog.py`` (bulk sends through ``raw_producer``), ``test_flush.py``
(store writes under ``current_event_of``) and ``test_store_options.py`` (customers counted
through ``partition_databases``); the door's own functions on a real app at the end here.
"""

import ast
import re
from pathlib import Path
from types import SimpleNamespace

import aiokafka
import faust.streams
import pytest
from faust.exceptions import NotReady
from faust.transport import consumer as faust_consumer

from agents import cli, fast_path
from agents.app import create_app
from agents.fast_path import (
    COPIED_FROM_FAUST,
    INTERNALS,
    TESTED_VERSIONS,
    FaustInternalsError,
    Internal,
    check,
    current_event_of,
    installed_versions,
    partition_databases,
    problems,
    raw_producer,
    source_sha256,
)
from agents.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_libraries_have_every_internal_the_worker_uses():
    assert problems() == []
    check()  # no error


def test_a_missing_internal_stops_the_worker_with_one_line_naming_versions(monkeypatch, capsys):
    monkeypatch.delattr(faust_consumer.Consumer, "_drain_messages")

    with pytest.raises(FaustInternalsError) as raised:
        check()
    message = str(raised.value)
    assert "\n" not in message
    assert "lacks Consumer._drain_messages(fetcher)" in message
    assert "was tested with faust-streaming 0.15.3, mode-streaming 0.7.1, aiokafka 0.14.0" in (
        message)
    installed = installed_versions()
    assert f"installed faust-streaming {installed['faust-streaming']}," in message
    assert f"aiokafka {installed['aiokafka']} lacks" in message
    assert "make install" in message

    # The worker command checks before it reads settings or reaches for the broker.
    assert cli.main(["worker"]) == 2
    assert "lacks Consumer._drain_messages(fetcher)" in capsys.readouterr().err


def test_a_changed_signature_is_reported(monkeypatch):
    def to_message(self, tp, record, extra):  # pragma: no cover - never called
        raise AssertionError

    monkeypatch.setattr(faust_consumer.Consumer, "_to_message", to_message)
    # the aiokafka driver's Consumer defines its own: take it away to reach the base's
    from faust.transport.drivers import aiokafka as faust_aiokafka
    monkeypatch.delattr(faust_aiokafka.Consumer, "_to_message")

    assert problems() == ["Consumer._to_message(tp, record) (it has (tp, record, extra))"]


def test_an_instance_attribute_no_longer_set_by_the_class_is_reported(monkeypatch):
    gone = Internal("faust.transport.drivers.aiokafka:Consumer", "_committed_offsets_v2",
                    "a name Faust never had", instance=True)
    moved = Internal("faust.transport.nowhere:Consumer", "_read_offset", "a module gone",
                     instance=True)
    monkeypatch.setattr(fast_path, "INTERNALS", (*INTERNALS, gone, moved))

    assert problems() == ["Consumer._committed_offsets_v2",
                          "faust.transport.nowhere.Consumer (for Consumer._read_offset)"]


def test_a_name_faust_starts_defining_that_our_subclass_also_defines_is_reported(monkeypatch):
    monkeypatch.setattr(faust_consumer.Consumer, "_take_new", lambda self: None, raising=False)

    assert problems() == ["BatchConsumer._take_new now overrides Consumer._take_new"]


@pytest.mark.parametrize("path", sorted(COPIED_FROM_FAUST))
def test_the_faust_code_our_batch_path_redoes_is_the_code_we_copied(path):
    """If this fails after an upgrade, compare Faust's new code with ``BatchConsumer
    ._drain_messages`` / ``BatchConductor.on_batch``, carry the change over, then record the
    new hash."""
    assert source_sha256(path) == COPIED_FROM_FAUST[path]


def test_the_tested_versions_are_installed_and_pinned_by_the_lock():
    assert installed_versions() == TESTED_VERSIONS
    lock = (ROOT / "requirements.lock").read_text()
    pinned = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lock, re.MULTILINE))
    assert {dist: pinned.get(dist) for dist in TESTED_VERSIONS} == TESTED_VERSIONS


def test_pyproject_bounds_faust_and_aiokafka_to_the_tested_minor_versions():
    pyproject = (ROOT / "pyproject.toml").read_text()
    for dist, version in TESTED_VERSIONS.items():
        major, minor, _ = version.split(".")
        assert f'"{dist}>={version},<{major}.{int(minor) + 1}"' in pyproject


def _private_uses(path: Path) -> list[str]:
    """Private names of other objects that a module reads, imports or overrides: ``x._name``
    (x not ``self``/``cls``), ``from m import _name``, ``getattr(x, "_name")``, and methods
    named ``_name`` on a class that derives from a library class."""
    tree = ast.parse(path.read_text(), str(path))
    private = re.compile(r"^_[a-z]").match
    namedtuple_api = {"_make", "_replace", "_asdict", "_fields"}  # public, despite the "_"
    found = []
    for node in ast.walk(tree):
        stdlib = isinstance(node, ast.Attribute) and node.attr == "_exit" and isinstance(
            node.value, ast.Name) and node.value.id == "os"  # os._exit: public, documented
        if (isinstance(node, ast.Attribute) and private(node.attr) and not stdlib
                and node.attr not in namedtuple_api
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
                "faust", "mode", "aiokafka"):
            found += [f"{path.name}:{node.lineno} import {a.name}" for a in node.names
                      if private(a.name)]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr") and len(node.args) > 1
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
              and private(node.args[1].value)):
            found.append(f"{path.name}:{node.lineno} {node.func.id} {node.args[1].value}")
        elif isinstance(node, ast.ClassDef) and any(
                isinstance(base, ast.Attribute) for base in node.bases):
            found += [f"{path.name}:{item.lineno} def {item.name}" for item in node.body
                      if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                      and private(item.name)]
    return found


def test_no_module_but_the_door_uses_a_private_name_of_another_object():
    modules = [p for folder in ("agents", "bench", "streams", "schemas")
               for p in sorted((ROOT / folder).glob("*.py")) if p.name != "fast_path.py"]
    assert len(modules) > 20
    assert [use for module in modules for use in _private_uses(module)] == []
    # the scan does see them where they are
    assert len(_private_uses(ROOT / "agents" / "fast_path.py")) >= 15


def test_the_list_of_internals_is_exactly_the_private_names_the_door_uses():
    """Every private name in ``fast_path.py`` is either its own (defined there, or a method its
    subclasses add) or listed in ``INTERNALS``; and every listed one is used."""
    tree = ast.parse((ROOT / "agents" / "fast_path.py").read_text())
    private = re.compile(r"^_[a-z]").match
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            used.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            used.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            used.add(node.value)
        elif isinstance(node, ast.ClassDef):
            used.update(item.name for item in node.body
                        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef))
    own = {name for node in tree.body for name in (
        [node.name] if isinstance(node, ast.FunctionDef | ast.ClassDef) else
        [t.id for t in getattr(node, "targets", [getattr(node, "target", None)])
         if isinstance(t, ast.Name)])}
    own |= {name for ours, base in fast_path._OUR_SUBCLASSES for name in vars(ours)
            if not hasattr(fast_path._resolve(base), name)}
    own |= fast_path._SET_ON_EVERY_SUBCLASS
    assert {name for name in used if private(name)} - own == {i.name for i in INTERNALS}


async def test_the_door_functions_read_what_faust_keeps(tmp_path):
    aml = create_app(Settings(store="memory://", data_dir=tmp_path))
    app = aml.faust
    with pytest.raises(NotReady):  # Faust's own answer before its producer has started
        raw_producer(app)
    app.producer._producer = app.producer._new_producer()  # as Faust's on_start does
    producer = raw_producer(app)
    try:
        assert isinstance(producer, aiokafka.AIOKafkaProducer)
        assert producer.create_batch().record_count() == 0
    finally:
        await producer.stop()  # never started: closes its client only

    message = SimpleNamespace(partition=5)
    assert faust.streams.current_event() is None
    with current_event_of(message):
        event = faust.streams.current_event()
        assert event is not None and event.message is message
    assert faust.streams.current_event() is None


def test_partition_databases_of_a_rocksdb_store_and_of_others(tmp_path):
    rocks = create_app(Settings(store="rocksdb://", data_dir=tmp_path / "r"))
    assert partition_databases(rocks.state.table.data) == {}  # none opened yet
    memory = create_app(Settings(store="memory://", data_dir=tmp_path / "m"))
    assert partition_databases(memory.state.table.data) is None
