"""Every error the core raises on purpose descends from one root, so front ends catch it once."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil

import pytest

import bot
from bot.cli import main
from bot.errors import RemovalDeskError
from bot.index.storage import FORMAT_NAME, FORMAT_VERSION


def _error_classes() -> list[type[BaseException]]:
    found = []
    for module_info in pkgutil.walk_packages(bot.__path__, prefix="bot."):
        if module_info.name.endswith("__main__"):  # runs the command line when imported
            continue
        module = importlib.import_module(module_info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__:
                found.append(value)
    return found


def test_every_error_class_of_the_core_descends_from_the_root():
    classes = _error_classes()
    assert len(classes) >= 10  # the walk reached the subpackages
    assert [cls.__qualname__ for cls in classes if not issubclass(cls, RemovalDeskError)] == []


@pytest.mark.parametrize("name", ["ConfigError", "IndexFormatError", "SourceError", "RemovalApplyError"])
def test_the_errors_that_were_value_errors_still_are(name):
    classes = {cls.__name__: cls for cls in _error_classes()}
    assert issubclass(classes[name], ValueError)


@pytest.mark.parametrize(
    "manifest",
    ["{not json", "[]", json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION}), "\udcff"],
    ids=["not-json", "a-list", "no-shards", "not-utf8"],
)
def test_the_command_line_prints_an_index_it_cannot_read_without_a_traceback(tmp_path, capsys, manifest):
    (tmp_path / "manifest.json").write_bytes(manifest.encode("utf-8", "surrogateescape"))
    assert main(["index", "info", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ")
    assert "Traceback" not in error
