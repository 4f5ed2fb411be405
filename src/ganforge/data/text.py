"""Text data sets: any file of sentences (one a line), and the COCO captions of the Texygen benchmark.

Lines are split into words (:func:`ganforge.text.tokenize`); the vocabulary always comes from
the *training* lines, so every split of a data set shares its ids (the test set's NLL is
defined). A split holds int64 ids ``[N, max_length + 1]`` (each sentence, ``<eos>``, padding)
of the lines that fit in ``max_length`` words; ``info["sentences"]`` keeps the words of *every*
line of the split, which BLEU takes as its references.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..text import Vocabulary, tokenize
from .base import DATASETS, Dataset, default_root, refuse_image_options

#: Texygen's COCO captions: 9,999 training and 10,000 test captions, at most 37 words.
COCO_URL = "https://github.com/geek-ai/Texygen/tree/master/data"
COCO_FILES = {"train": "coco_train.txt", "test": "coco_test.txt"}
COCO_MAX_LENGTH = 37


def read_lines(path: Path) -> list[list[str]]:
    """The non-empty lines of a UTF-8 text file, as words; a one-line error for anything else."""
    if not path.is_file():
        raise DataError(f"text file '{path}' does not exist")
    raw = path.read_bytes()
    if b"\0" in raw[:65536]:
        raise DataError(f"'{path}' is a binary file, not text (one sentence a line, UTF-8)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"'{path}' is not UTF-8 text (byte {err.start}: {raw[err.start:err.start + 1]!r})") from None
    sentences = [words for words in (tokenize(line) for line in text.splitlines()) if words]
    if not sentences:
        raise DataError(f"'{path}' holds no sentences (it is empty or blank)")
    return sentences


def text_dataset(name: str, files: dict[str, Path], split: str, max_length: int | None, vocab_size: int | None,
                 default_length: int | None = None) -> Dataset:
    """Split ``split`` of the text files ``files`` (``train`` and optionally ``test``) as a :class:`Dataset`."""
    if split not in files:
        raise DataError(f"data set '{name}' has the split(s) {', '.join(map(repr, files))}, not {split!r}")
    train = read_lines(files["train"])
    if len(train) < 2:
        raise DataError(f"'{files['train']}' holds one sentence: a data set needs at least 2 (one a line)")
    sentences = train if split == "train" else read_lines(files[split])
    vocab = Vocabulary.build(train, vocab_size)
    length = max_length or default_length or max(len(s) for s in train)
    fitting = [s for s in sentences if len(s) <= length]
    if not fitting:
        raise DataError(f"no sentence of '{files[split]}' fits in data.max_length={length} words")
    if len(fitting) < len(sentences):
        print(f"{name}: {len(sentences) - len(fitting)} of {len(sentences)} {split} sentences are longer than "
              f"{length} words and left out (data.max_length)", file=sys.stderr)
    info: dict[str, Any] = {"vocab": vocab.words, "sentences": sentences, "max_length": length, "split": split,
                            "files": {k: str(v) for k, v in files.items()}}
    return Dataset(name, vocab.encode(fitting, length), info=info, modality="text")


def _refuse_image_options(name: str, resolution: int | None, channels: int | None) -> None:
    refuse_image_options(name, "text", "data.max_length", resolution, channels)


@DATASETS.register("text-lines", help="a UTF-8 text file, one sentence a line (or a folder with train.txt, test.txt); data.root")
def text_lines(*, root: str | None, split: str, resolution: int | None, channels: int | None, download: bool,
               max_length: int | None, vocab_size: int | None) -> Dataset:
    """Sentences of a text file (``split='train'``), or of ``train.txt`` / ``test.txt`` in a folder.

    Args:
        root: the file, or a folder holding ``train.txt`` (and ``test.txt`` for the test split).
        max_length: longest sentence in words (longer lines are left out); None: the longest training line.
        vocab_size: ids in all, the 4 special tokens included; None: every training word.
        resolution, channels: must be None (images only). download: ignored.
    """
    if root is None:
        raise DataError("data set 'text-lines' needs data.root=FILE (one sentence a line) or a folder with train.txt")
    _refuse_image_options("text-lines", resolution, channels)
    path = Path(root).expanduser()
    if path.is_dir():
        files = {s: path / f"{s}.txt" for s in ("train", "test") if (path / f"{s}.txt").is_file()}
        if "train" not in files:
            raise DataError(f"folder '{path}' has no train.txt (give data.root=FILE for a single file)")
    else:
        files = {"train": path}
    return text_dataset("text-lines", files, split, max_length, vocab_size)


@DATASETS.register("coco-captions", help="MS-COCO captions as split by Texygen: 9,999 train, 10,000 test captions; data.root=DIR")
def coco_captions(*, root: str | None, split: str, resolution: int | None, channels: int | None, download: bool,
                  max_length: int | None, vocab_size: int | None) -> Dataset:
    """Texygen's COCO image captions (``coco_train.txt``, ``coco_test.txt`` in ``root``).

    ganforge does not download them: get them from the Texygen repository (``image_coco.txt``
    and ``testdata/test_coco.txt`` there) and name them as above.
    """
    _refuse_image_options("coco-captions", resolution, channels)
    folder = Path(root).expanduser() if root else default_root("coco-captions")
    files = {s: folder / f for s, f in COCO_FILES.items()}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise DataError(f"the COCO captions are not at '{folder}' (missing {', '.join(missing)}): ganforge does not download "
                        f"them; get them from {COCO_URL} and give their folder with data.root=DIR")
    return text_dataset("coco-captions", files, split, max_length, vocab_size, COCO_MAX_LENGTH)
