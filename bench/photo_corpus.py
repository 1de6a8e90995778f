"""Thousands of distinct real pictures for precision measurements, from Debian packages.

A false-match rate per unrelated pair is only as good as the pairs: they must be real photographs
(renders, gradients and logos hash differently) and they must be unrelated (no two copies, frames
or stereo views of one scene). Debian ships real photographs in a few packages; each is fetched
with ``apt-get download`` into a cache folder and unpacked with ``dpkg-deb -x`` (nothing is
installed). Which files are photographs was decided by looking at them; the lists below say so.

Photographs with a shorter side >= ``tile_from`` px are cut into NON-overlapping square tiles
of ``tile_side`` px on a centred grid, each tile a distinct picture; tiles of one photograph share
its light and colours, so they are reported apart from pairs of different photographs. Smaller
pictures are used whole, through their own file bytes.
"""

from __future__ import annotations

import fnmatch
import io
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

DEFAULT_CACHE = Path.home() / ".cache" / "removal-desk" / "photos"
PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
# What a source's pictures show: false matches depend on it, so the benches report each apart.
GENRES = ("everyday", "telescope", "cut-out")


@dataclass(frozen=True)
class PhotoSource:
    """Photographs in one Debian package: globs under the unpacked tree, minus excluded stems."""

    package: str
    patterns: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    why: str = ""
    genre: str = GENRES[0]
    # gcompris packs its pictures (WebP) into Qt resource files: carve them out first.
    carve_rcc: bool = False
    # Keep only the largest file per folder (one wallpaper shipped at a dozen sizes).
    largest_per_folder: bool = False
    # Keep only the largest file per stem (the dev set's rule for opencv-doc).
    largest_per_stem: bool = False
    min_bytes: int = 0
    # Tile this source's photographs from this shorter side on, instead of the global setting.
    tile_from: int | None = None


# OpenCV's samples: the dev set's originals (same selection rule as make_devset.py), without the
# synthetic ones, and one picture of each related group: stereo pairs (aero1/aero3, aloeL/aloeR,
# leuvenA/leuvenB, graf1/graf3), video frames (basketball, rubberwhale), an edit (ela_*), and the
# box that box_in_scene shows.
_OPENCV_SYNTHETIC = (
    "aloeGT",
    "cards",
    "chessboard",
    "digits",
    "ellipses",
    "gradient",
    "imageTextR",
    "input",
    "ml",
    "opencv-logo",
    "pic2",
    "pic4",
    "stanford",
    "scenetext_word04",
)
_OPENCV_RELATED = ("aero3", "aloeR", "leuvenB", "graf3", "basketball2", "rubberwhale2", "ela_modified", "box")

SOURCES: tuple[PhotoSource, ...] = (
    PhotoSource(
        "opencv-doc",
        ("usr/share/doc/opencv-doc/examples/**/*",),
        exclude=(*_OPENCV_SYNTHETIC, *_OPENCV_RELATED, "js_*"),
        why="the dev set's originals, at full size",
        largest_per_stem=True,
        min_bytes=40_000,
    ),
    PhotoSource(
        "lomiri-wallpapers-16.04",
        ("usr/share/backgrounds/*",),
        exclude=("umang_by_Abhishek_Mudgal",),  # an abstract render
        why="Ubuntu 16.04 wallpaper photographs",
    ),
    PhotoSource(
        "lomiri-wallpapers-20.04",
        ("usr/share/backgrounds/Infinite-Sea*", "usr/share/backgrounds/Kleiber*"),
        why="the two photographs among Ubuntu 20.04's wallpapers",
    ),
    PhotoSource(
        "mate-backgrounds", ("usr/share/backgrounds/mate/nature/*",), why="MATE's nature photographs"
    ),
    PhotoSource(
        "plasma-workspace-wallpapers",
        tuple(
            f"usr/share/wallpapers/{name}/contents/images/*"
            for name in (
                "BytheWater",
                "ColdRipple",
                "ColorfulCups",
                "DarkestHour",
                "EveningGlow",
                "FallenLeaf",
                "Grey",
                "Kite",
                "OneStandsOut",
                "Path",
                "summer_1am",
            )
        ),
        why="the photographs among KDE Plasma's wallpapers (the others are renders)",
        largest_per_folder=True,
    ),
    PhotoSource(
        "lxqt-themes",
        tuple(
            f"usr/share/lxqt/wallpapers/{name}"
            for name in (
                "Butterfly-Kenneth-Wimer.jpg",
                "Valendas.png",
                "after-the-rain.jpg",
                "appleflower.png",
                "beam.png",
                "butterfly.png",
                "cloud.png",
                "drop.png",
                "flowers.png",
                "fog.jpg",
                "this-is-not-windows.jpg",
            )
        ),
        why="the photographs among LXQt's wallpapers",
    ),
    PhotoSource(
        "gcompris-qt-data",
        tuple(
            f"carved/{activity}__*"
            for activity in (
                "categorization",
                "clickgame",
                "details",
                "erase",
                "explore_farm_animals",
                "explore_monuments",
                "explore_world_animals",
                "explore_world_music",
            )
        ),
        # Three are copies of explore_monuments pictures; details__013 is another photograph of
        # Neuschwanstein from explore_monuments__042's viewpoint (a near-stereo pair).
        exclude=("categorization__114", "categorization__116", "categorization__118", "details__013"),
        why="photographs in GCompris activities (animals, tools, monuments, landscapes)",
        carve_rcc=True,
    ),
    PhotoSource(
        "stellarium-data",
        ("usr/share/stellarium/nebulae/default/*",),
        why="telescope photographs of nebulae and galaxies: dark, centred, alike in layout",
        genre="telescope",
        min_bytes=20_000,
        tile_from=1000,  # the 512 px ones stay whole: their quarters are mostly black sky
    ),
    PhotoSource(
        "scratch",
        ("usr/share/scratch/Media/Backgrounds/*/*.jpg",),
        # Drawings; and one of each pair of photographs of one place (brick wall, skyline).
        exclude=(
            "party-room",
            "room1",
            "room2",
            "room3",
            "spotlight-stage",
            "woods-and-bench",
            "graffiti",
            "school2",
            "basketball-court1-*",
            "brick-wall2",
            "city-with-water2",
        ),
        why="Scratch 1.4's photographic stage backgrounds",
    ),
    PhotoSource(
        "palapeli-data", ("usr/share/palapeli/collection/*.jpg",), why="KDE Palapeli's jigsaw photographs"
    ),
    PhotoSource(
        "tuxpaint-stamps-default",
        tuple(
            f"usr/share/tuxpaint/stamps/{folder}/**/*.png"
            for folder in ("animals", "food", "household", "plants", "hobbies", "medical", "sports")
        ),
        # Drawings, a mirrored copy, a recoloured copy.
        exclude=("*/cartoon/*", "tooth", "button", "cylinder", "measuring_tape_mirror", "pig_golden2"),
        why="Tux Paint's photographic stamps: objects and animals cut out on white (product-shot-like)",
        genre="cut-out",
    ),
    PhotoSource(
        "python3-skimage",
        tuple(
            f"usr/lib/python3/dist-packages/skimage/data/{name}"
            for name in (
                "astronaut.png",
                "brick.png",
                "camera.png",
                "cell.png",
                "chelsea.png",
                "coffee.png",
                "coins.png",
                "grass.png",
                "gravel.png",
                "hubble_deep_field.jpg",
                "ihc.png",
                "moon.png",
                "motorcycle_left.png",
                "page.png",
                "retina.jpg",
                "rocket.jpg",
                "text.png",
            )
        ),
        why="scikit-image's sample photographs",
    ),
)


_GENRE_OF_PACKAGE = {source.package: source.genre for source in SOURCES}


def genre_of(package: str) -> str:
    """The genre of a package's pictures (everyday photographs for any other picture)."""
    return _GENRE_OF_PACKAGE.get(package, GENRES[0])


@dataclass(frozen=True)
class Picture:
    """One distinct picture: a whole file, or a tile (``box``) of a large photograph."""

    name: str
    photo: str  # the photograph it was cut from; tiles of one photograph share it
    package: str
    path: Path
    box: tuple[int, int, int, int] | None


def fetch_package(package: str, cache: Path) -> Path:
    """The unpacked tree of ``package`` (downloaded and unpacked once into ``cache``)."""
    tree = cache / "x" / package
    if (tree / ".unpacked").exists():
        return tree
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        done = subprocess.run(
            ["apt-get", "download", package], cwd=debs, capture_output=True, text=True, check=False
        )
        found = sorted(debs.glob(f"{package}_*.deb"))
        if not found:
            raise RuntimeError(
                f"apt-get download {package} failed ({done.stderr.strip()[-300:]}); run apt-get update first"
            )
    tree.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(tree)], check=True)
    (tree / ".unpacked").touch()
    found[-1].unlink()  # the unpacked tree is all that is read again
    return tree


def carve_rcc_webp(rcc_folder: Path, out: Path, *, min_side: int = 128) -> None:
    """Copy out the WebP pictures stored (uncompressed) inside Qt ``.rcc`` resource files."""
    if (out / ".carved").exists():
        return
    out.mkdir(parents=True, exist_ok=True)
    for rcc in sorted(rcc_folder.glob("*.rcc")):
        data = rcc.read_bytes()
        kept = 0
        start = data.find(b"RIFF")
        while start != -1:
            if data[start + 8 : start + 12] == b"WEBP":
                length = struct.unpack("<I", data[start + 4 : start + 8])[0]
                blob = data[start : start + 8 + length]
                try:
                    size = Image.open(io.BytesIO(blob)).size
                except Exception:  # a RIFF tag inside other data, not a picture
                    size = (0, 0)
                if min(size) >= min_side:
                    (out / f"{rcc.stem}__{kept:03d}.webp").write_bytes(blob)
                    kept += 1
            start = data.find(b"RIFF", start + 4)
    (out / ".carved").touch()


def _source_files(source: PhotoSource, tree: Path) -> list[Path]:
    files = [
        path
        for pattern in source.patterns
        for path in sorted(tree.glob(pattern))
        if path.suffix.lower() in PICTURE_SUFFIXES
        and path.is_file()
        and not path.is_symlink()
        and path.stat().st_size >= source.min_bytes
    ]
    files = list(dict.fromkeys(files))
    if source.largest_per_folder or source.largest_per_stem:
        best: dict[str, Path] = {}
        for path in files:
            key = str(path.parent) if source.largest_per_folder else path.stem.replace(" ", "_")
            if key not in best or path.stat().st_size > best[key].stat().st_size:
                best[key] = path
        files = sorted(best.values())
    return [path for path in files if not _excluded(path, source.exclude)]


def _excluded(path: Path, patterns: tuple[str, ...]) -> bool:
    """A pattern with a slash is matched against the whole path, any other against the stem."""
    stem = path.stem.replace(" ", "_")
    return any(fnmatch.fnmatch(str(path) if "/" in p else stem, p) for p in patterns)


def oriented_size(path: Path) -> tuple[int, int]:
    """The picture's size after its EXIF orientation is applied (as decode_picture does)."""
    with Image.open(path) as image:
        width, height = image.size
        if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):
            return height, width
        return width, height


def tile_boxes(size: tuple[int, int], tile_side: int) -> list[tuple[int, int, int, int]]:
    """Non-overlapping ``tile_side`` squares on a grid centred in a picture of ``size``."""
    width, height = size
    columns, rows = width // tile_side, height // tile_side
    left0, top0 = (width - columns * tile_side) // 2, (height - rows * tile_side) // 2
    return [
        (left0 + c * tile_side, top0 + r * tile_side, left0 + (c + 1) * tile_side, top0 + (r + 1) * tile_side)
        for r in range(rows)
        for c in range(columns)
    ]


def gather(cache: Path = DEFAULT_CACHE, *, tile_side: int = 256, tile_from: int = 512) -> list[Picture]:
    """Every picture of every source, tiles included, in a stable order."""
    pictures: list[Picture] = []
    for source in SOURCES:
        tree = fetch_package(source.package, cache)
        if source.carve_rcc:
            carve_rcc_webp(tree / "usr/share/gcompris-qt/rcc", tree / "carved")
        for path in _source_files(source, tree):
            photo = f"{source.package}/{path.relative_to(tree)}"
            size = oriented_size(path)
            if min(size) >= (source.tile_from or tile_from):
                for box in tile_boxes(size, tile_side):
                    name = f"{photo}#{box[0]},{box[1]}"
                    pictures.append(Picture(name, photo, source.package, path, box))
            else:
                pictures.append(Picture(photo, photo, source.package, path, None))
    return pictures


def picture_bytes(pictures: list[Picture]) -> Iterator[tuple[Picture, bytes]]:
    """The bytes a person would send for each picture of ONE photograph: the file, or a tile as PNG.

    The photograph is decoded once for all its tiles; a tile is written losslessly so that the
    picture the matcher sees is exactly that region of the original.
    """
    whole = [p for p in pictures if p.box is None]
    for picture in whole:
        yield picture, picture.path.read_bytes()
    tiles = [p for p in pictures if p.box is not None]
    if not tiles:
        return
    with Image.open(tiles[0].path) as opened:
        image = ImageOps.exif_transpose(opened)
        image.load()
    if image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "RGB")
    for picture in tiles:
        buffer = io.BytesIO()
        image.crop(picture.box).save(buffer, "PNG", compress_level=1)
        yield picture, buffer.getvalue()
