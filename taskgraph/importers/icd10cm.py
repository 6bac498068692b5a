"""Import the ICD-10-CM code hierarchy from its tabular XML.

The CDC's tabular list (``icd10cm-tabular-*.xml``) nests chapters, sections (blocks
such as ``A00-A09``), categories (``A00``) and subcategories (``A00.0``). Some
categories declare a ``sevenChrDef``: every leaf code below them then takes a 7th
character, padded with the placeholder ``X`` to six characters first (``S00.00`` →
``S00.00XA``); these extended codes are tasks too (``extensions=False`` leaves them
out; as the notes of category S06 say, its codes with 6th character 7 or 8 take
only ``A``). The April 2026 file ships with the PyPI package ``simple-icd-10-cm``
(``pip install "taskgraph[icd10]"``), which :func:`import_icd10cm` reads by default.

Every code becomes a binary task named by its code (chapters as ``chapter 1`` …),
with its description; the hierarchy is a forest of 22 chapter trees. A section that
holds one category (``B10``) is named as a range (``B10-B10``) so that it does not
collide with the category.

Example:
    >>> xml = '''<ICD10CM.tabular><chapter><name>1</name><desc>Infections</desc>
    ...   <section id="A00-A09"><desc>Intestinal</desc>
    ...     <diag><name>A00</name><desc>Cholera</desc>
    ...       <diag><name>A00.0</name><desc>Classical</desc></diag></diag>
    ...     <diag><name>A01</name><desc>Fracture</desc>
    ...       <sevenChrDef><extension char="A">initial</extension></sevenChrDef></diag>
    ...   </section></chapter></ICD10CM.tabular>'''
    >>> h = parse_icd10cm(xml)
    >>> h.task_names
    ('chapter 1', 'A00-A09', 'A00', 'A00.0', 'A01', 'A01.XXXA')
    >>> h.parents("A01.XXXA"), h["A01.XXXA"].description
    (('A01',), 'Fracture, initial')
"""

from __future__ import annotations

import glob
import os
import xml.etree.ElementTree as ET
from typing import Any

from taskgraph.errors import DataError

__all__ = ["parse_icd10cm", "import_icd10cm", "default_path"]

_INSTALL = ('the ICD-10-CM tabular XML ships with the optional package simple-icd-10-cm: '
            'pip install "taskgraph[icd10]" (or pass the XML file)')


def default_path() -> str:
    """The tabular XML inside the installed ``simple-icd-10-cm`` package.

    Raises:
        FileNotFoundError: the package is not installed (the message says how).
    """
    try:
        import importlib.util
        spec = importlib.util.find_spec("simple_icd_10_cm")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(2, _INSTALL, "simple_icd_10_cm")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "data")
    found = sorted(glob.glob(os.path.join(folder, "*tabular*.xml")))
    if not found:
        raise FileNotFoundError(2, "no tabular XML in the simple-icd-10-cm package; " + _INSTALL,
                                folder)
    return found[-1]


def _text(element: ET.Element, tag: str, where: str) -> str:
    value = element.findtext(tag)
    if value is None or not value.strip():
        raise DataError(f"{where}: a <{element.tag}> without <{tag}>")
    return " ".join(value.split())


def parse_icd10cm(source: Any, *, extensions: bool = True, name: str = "icd10cm",
                  where: str = "<icd10cm>"):
    """A :class:`~taskgraph.hierarchy.Hierarchy` from ICD-10-CM tabular XML.

    Args:
        source: the XML text, or a path / binary file object.
        extensions: also the 7th-character extended codes (about half of all codes).
        name: the hierarchy's name.
        where: how messages name the source.

    Raises:
        DataError: not ICD-10-CM tabular XML, or a code without a name.
    """
    from taskgraph.hierarchy import load_hierarchy

    try:
        root = (ET.fromstring(source) if isinstance(source, str) and source.lstrip().startswith("<")
                else ET.parse(source).getroot())
    except ET.ParseError as exc:
        raise DataError(f"{where}: not well-formed XML ({exc})") from None
    tasks: dict[str, dict[str, Any]] = {}

    def add(code: str, description: str, parent: str | None) -> None:
        if code in tasks:
            raise DataError(f"{where}: code {code!r} appears twice")
        body: dict[str, Any] = {"type": "binary", "description": description}
        if parent is not None:
            body["parents"] = [parent]
        tasks[code] = body

    def walk(diag: ET.Element, parent: str, seven: list[tuple[str, str]]) -> None:
        code = _text(diag, "name", where)
        description = _text(diag, "desc", where)
        add(code, description, parent)
        own = diag.find("sevenChrDef")
        if own is not None:  # the nearest definition wins
            seven = [(e.get("char", ""), " ".join((e.text or "").split()))
                     for e in own.findall("extension")]
        children = diag.findall("diag")
        for child in children:
            walk(child, code, seven)
        if not children and seven and extensions:
            base = code.replace(".", "").ljust(6, "X")
            for char, text in seven:
                if base.startswith("S06") and base[5] in "78" and char in "DS":
                    continue  # the S06 note: D and S never follow a 6th character 7 or 8
                add(f"{base[:3]}.{base[3:]}{char}", f"{description}, {text}", code)

    chapters = root.findall("chapter")
    if root.tag != "ICD10CM.tabular" or not chapters:
        raise DataError(f"{where}: not ICD-10-CM tabular XML (expected <ICD10CM.tabular> "
                        f"with <chapter> elements, got <{root.tag}>)")
    for chapter in chapters:
        chapter_name = "chapter " + _text(chapter, "name", where)
        add(chapter_name, _text(chapter, "desc", where), None)
        for section in chapter.findall("section"):
            section_id = section.get("id")
            if not section_id:
                raise DataError(f"{where}: a <section> without an id in {chapter_name}")
            if "-" not in section_id:  # a one-category block shares the category's code
                section_id = f"{section_id}-{section_id}"
            add(section_id, _text(section, "desc", where), chapter_name)
            for diag in section.findall("diag"):
                walk(diag, section_id, [])
    kind = "codes" if extensions else "codes (without 7th-character extensions)"
    return load_hierarchy({"taskgraph": 1, "name": name,
                           "description": f"{len(tasks)} ICD-10-CM {kind}: chapters, "
                                          "sections, categories, subcategories.",
                           "model": {"coherent": True}, "tasks": tasks})


def import_icd10cm(path: str | os.PathLike | None = None, *, extensions: bool = True,
                   name: str = "icd10cm"):
    """Read the ICD-10-CM tabular XML (default: the one ``simple-icd-10-cm`` ships)."""
    path = default_path() if path is None else os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "no such ICD-10-CM tabular XML file", path)
    return parse_icd10cm(path, extensions=extensions, name=name, where=path)
