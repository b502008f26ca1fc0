"""Fingerprints of article texts for near-duplicate detection (newsmon.text.dedup).

1. :func:`normalise_text` case-folds the text and keeps only its words (punctuation, quote
   styles and whitespace do not count); :func:`text_hash` of it finds exact duplicates.
2. :func:`fingerprint`: the text's word shingles (:data:`SHINGLE_WORDS` consecutive words)
   are hashed to 32 bits, summarised by a MinHash of :data:`NUM_PERM` permutations (datasketch's
   ``affine32`` scheme; the same arithmetic vectorised with numpy, see :func:`minhash`), and the
   signature is cut into :data:`LSH_BANDS` bands of :data:`LSH_ROWS` rows. Each band becomes a
   short key (``"07:3fa9c2d1e0b4"``) that is stored with the article: two texts sharing any key
   are candidates. The fingerprint also keeps the exact shingle set and the text's facts (names
   and numbers in their wording) that newsmon.text.dedup verifies candidates on.

Everything is deterministic across processes and machines: hashes are blake2b and fixed
64-bit arithmetic, never Python's salted ``hash()``, and MinHash permutations come from
datasketch's seeded generator. The band keys also encode the parameters, so keys made with
other parameters never match.
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from datasketch import MinHash  # type: ignore[import-untyped]

__all__ = [
    "LSH_BANDS",
    "LSH_ROWS",
    "MINHASH_SEED",
    "MIN_WORDS",
    "NUM_PERM",
    "SHINGLE_WORDS",
    "Fingerprint",
    "FingerprintParams",
    "Fingerprinter",
    "fingerprint",
    "minhash",
    "minhash_datasketch",
    "normalise_text",
    "shingle_hashes",
    "text_hash",
]

# --------------------------------------------------------------------------------------------
# fingerprint parameters (chosen with bench/dedup_quality.py, see docs/dedup.md)
# --------------------------------------------------------------------------------------------

SHINGLE_WORDS: Final = 3  # words per shingle
LSH_BANDS: Final = 40  # band keys per article
LSH_ROWS: Final = 3  # MinHash values per band; threshold ≈ (1/40)^(1/3) ≈ 0.29
NUM_PERM: Final = LSH_BANDS * LSH_ROWS
MINHASH_SEED: Final = 1
MIN_WORDS: Final = 50  # shorter texts get no band keys: never clustered by text

# --------------------------------------------------------------------------------------------
# text normalisation and shingle hashes
# --------------------------------------------------------------------------------------------

# Words are found in the UTF-8 bytes with numpy (about twice as fast as a regular expression):
# ASCII letters and digits, and every non-ASCII character except the punctuation and symbol
# blocks below, are word characters. Characters of scripts written without spaces between
# words are words on their own, so a Japanese or Thai article has as many words as characters
# and its shingles are character n-grams.
_U8 = npt.NDArray[np.uint8]
_WORD_BYTE: Final = np.zeros(256, dtype=bool)
for _first, _last in ((ord("0"), ord("9")), (ord("A"), ord("Z")), (ord("a"), ord("z"))):
    _WORD_BYTE[_first : _last + 1] = True
_WORD_BYTE[0x80:] = True
# (first byte, second byte from, to, length): non-ASCII characters that separate words
_SEPARATORS: Final = (
    (0xC2, 0x80, 0xBF, 2),  # U+0080-00BF: Latin-1 punctuation and symbols (guillemets, ©, °)
    (0xC3, 0x97, 0x97, 2),  # U+00D7 multiplication sign
    (0xC3, 0xB7, 0xB7, 2),  # U+00F7 division sign
    (0xE2, 0x80, 0xBF, 3),  # U+2000-2FFF: general punctuation (curly quotes, dashes), symbols
    (0xE3, 0x80, 0x80, 3),  # U+3000-303F: CJK punctuation
    (0xEF, 0xB8, 0xBB, 3),  # U+FE00-FEFF: variation selectors, small forms, byte order mark
    (0xF0, 0x9F, 0x9F, 4),  # U+1F000-1FFFF: emoji and pictographs
)
# (first byte, second byte from, to): 3-byte characters that are words on their own
_ALONE: Final = (
    (0xE0, 0xB8, 0xBB),  # U+0E00-0EFF: Thai, Lao
    (0xE1, 0x80, 0x82),  # U+1000-109F: Myanmar
    (0xE1, 0x9E, 0x9F),  # U+1780-17FF: Khmer
    (0xE3, 0x81, 0x83),  # U+3040-30FF: Hiragana, Katakana
    (0xE3, 0x90, 0xBF),  # U+3400-3FFF: CJK extension A
    *((lead, 0x80, 0xBF) for lead in range(0xE4, 0xEA)),  # U+4000-9FFF: CJK ideographs
    (0xEF, 0xA4, 0xAB),  # U+F900-FAFF: CJK compatibility ideographs
)


# the two first bytes of a multi-byte character -> its class: 0 a word character,
# 2 to 4 a separator of that many bytes, _SOLO a word on its own
_SOLO: Final = 1
_CLASS: Final = np.zeros(1 << 16, dtype=np.uint8)
for _lead, _low, _high, _length in _SEPARATORS:
    _CLASS[(_lead << 8) + _low : (_lead << 8) + _high + 1] = _length
for _lead, _low, _high in _ALONE:
    _CLASS[(_lead << 8) + _low : (_lead << 8) + _high + 1] = _SOLO


def _written_words(text: str) -> tuple[_U8, _I64]:
    """The text's words as written (NFKC), as UTF-8 bytes separated by single spaces, and
    the offset of each word in them."""
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    data = np.frombuffer(text.encode("utf-8", "replace"), dtype=np.uint8)
    size = len(data)
    word = _WORD_BYTE[data]
    start = np.zeros(size, dtype=bool)
    leads = np.flatnonzero(data >= 0xC2)  # first bytes of multi-byte characters
    if len(leads):
        pairs = (data[leads].astype(np.uint16) << 8) | data[np.minimum(leads + 1, size - 1)]
        kinds = _CLASS[pairs]
        for length in (2, 3, 4):
            found = leads[kinds == length]
            if len(found):
                word[(found[:, np.newaxis] + np.arange(length)).ravel()] = False
        solo = leads[kinds == _SOLO]
        if len(solo):
            start[solo] = True
            after = solo[solo + 3 < size] + 3
            start[after] = word[after]
    start[1:] |= word[1:] & ~word[:-1]
    start[:1] = word[:1]
    kept = np.flatnonzero(word)
    if not len(kept):
        return np.zeros(0, dtype=np.uint8), np.zeros(0, dtype=np.int64)
    starts = start[kept]
    index = np.cumsum(starts, dtype=np.int64) - 1  # the word each kept byte belongs to
    out = np.full(len(kept) + int(index[-1]), 0x20, dtype=np.uint8)
    positions = np.arange(len(kept)) + index
    out[positions] = data[kept]
    return out, positions[starts]


def normalise_text(text: str) -> str:
    """The text's words, case-folded (NFKC), separated by single spaces.

    Punctuation, quote and dash styles, and whitespace (line breaks, paragraph breaks) are
    dropped, so curly and straight quotes, or "U.S." and "U S", give the same string.
    """
    return _written_words(text)[0].tobytes().decode("utf-8").casefold()


def text_hash(text: str) -> str:
    """Hex digest (128-bit blake2b) of :func:`normalise_text`: equal for exact duplicates."""
    return _digest(normalise_text(text).encode("utf-8"))


def _digest(normalised: bytes) -> str:
    return hashlib.blake2b(normalised, digest_size=16).hexdigest()


_U64 = npt.NDArray[np.uint64]
_U32 = npt.NDArray[np.uint32]
_I64 = npt.NDArray[np.int64]

# Polynomial hash of byte strings modulo 2**64 (numpy's uint64 arithmetic wraps): with the
# prefix sums F[t] = sum(b[j] * P**j, j < t), the hash of bytes s..e-1 is
# (F[e] - F[s]) * P**-s. Every shingle's hash costs a few vector operations.
_POLY: Final = 0x9E3779B97F4A7C15  # odd, so it has an inverse modulo 2**64
_POLY_INVERSE: Final = pow(_POLY, -1, 1 << 64)
_MIX_LENGTH: Final = np.uint64(0xC2B2AE3D27D4EB4F)
_CONTEXT_WORDS: Final = 2  # words on each side of a fact that make its wording
# Capital letters as the first UTF-8 bytes of a word: A-Z, and the encodings of the Latin-1
# (À-Þ), Greek (Ά-Ϋ) and Cyrillic (Ѐ-Я) capitals (first byte, second byte range).
_CAPITAL: Final = np.zeros(256, dtype=bool)
_CAPITAL[ord("A") : ord("Z") + 1] = True
_CAPITAL_PAIRS: Final = ((0xC3, 0x80, 0x9E), (0xCE, 0x86, 0xAB), (0xD0, 0x80, 0xAF))
_ASCII_LOWER: Final = np.arange(256, dtype=np.uint8)
_ASCII_LOWER[ord("A") : ord("Z") + 1] += 32
_DIGIT: Final = np.zeros(256, dtype=bool)
_DIGIT[ord("0") : ord("9") + 1] = True


def _capitalised(raw: npt.NDArray[np.uint8], starts: _I64) -> npt.NDArray[np.bool_]:
    first = raw[starts]
    flags: npt.NDArray[np.bool_] = _CAPITAL[first]
    second = raw[np.minimum(starts + 1, len(raw) - 1)]
    for lead, low, high in _CAPITAL_PAIRS:
        flags |= (first == lead) & (second >= low) & (second <= high)
    return flags


@functools.lru_cache(maxsize=16)
def _powers(size: int) -> tuple[_U64, _U64]:
    """P**j and P**-j modulo 2**64 for j < size (size a power of two)."""
    powers = np.full(size, _POLY, dtype=np.uint64)
    powers[0] = 1
    inverses = np.full(size, _POLY_INVERSE, dtype=np.uint64)
    inverses[0] = 1
    return np.cumprod(powers, dtype=np.uint64), np.cumprod(inverses, dtype=np.uint64)


def _fmix64(h: _U64) -> _U64:
    """MurmurHash3's 64-bit finaliser (in place): spreads every input bit over the output."""
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


def _token_starts(data: npt.NDArray[np.uint8]) -> tuple[_I64, _I64]:
    """Start and end offsets of the space-separated tokens of ``data``."""
    gaps = np.flatnonzero(data == 0x20)
    return np.concatenate(([0], gaps + 1)), np.concatenate((gaps, [len(data)]))


@dataclass(frozen=True)
class _Text:
    """One pass over a text: what fingerprints and hashes are made of."""

    words: int
    data: npt.NDArray[np.uint8]  # UTF-8 bytes of normalise_text(text)
    starts: _I64  # word i is data[starts[i]:ends[i]]
    ends: _I64
    capitalised: npt.NDArray[np.bool_]  # word i was written with a capital letter
    numbers: npt.NDArray[np.bool_]  # word i starts with a digit

    @classmethod
    def of(cls, text: str) -> _Text:
        raw, raw_starts = _written_words(text)
        if not len(raw_starts):
            empty = np.zeros(0, dtype=np.int64)
            none = np.zeros(0, dtype=bool)
            return cls(0, raw, empty, empty, none, none)
        if raw.max() < 0x80:  # ASCII words (punctuation is gone): case-fold with a table
            data = _ASCII_LOWER[raw]
        else:
            folded = raw.tobytes().decode("utf-8").casefold()
            data = np.frombuffer(folded.encode("utf-8"), dtype=np.uint8)
        if len(data) == len(raw):  # case folding kept every byte offset (almost always)
            starts = raw_starts
            ends = np.concatenate((raw_starts[1:] - 1, [len(data)]))
        else:
            starts, ends = _token_starts(data)
        capitalised = _capitalised(raw, raw_starts)
        words = len(starts)
        return cls(words, data, starts, ends, capitalised, _DIGIT[data[starts]])

    def span_hashes(self, first: _I64, last: _I64) -> _U32:
        """32-bit hashes of the byte spans first[i]..last[i]-1."""
        size = 1 << max(10, len(self.data).bit_length())
        powers, inverses = _powers(size)
        prefix = np.zeros(len(self.data) + 1, dtype=np.uint64)
        np.cumsum(
            self.data.astype(np.uint64) * powers[: len(self.data)], dtype=np.uint64, out=prefix[1:]
        )
        hashes = (prefix[last] - prefix[first]) * inverses[first]
        hashes ^= (last - first).astype(np.uint64) * _MIX_LENGTH
        return (_fmix64(hashes) >> np.uint64(32)).astype(np.uint32)

    def shingles_and_facts(self, size: int) -> tuple[_U32, _U64]:
        """Hashes of every run of ``size`` consecutive words (of all words if fewer), in text
        order, and the text's facts in their wording.

        A fact is a run of words written with a capital letter or starting with a digit
        ("Qamar Javed Bajwa", "31", "NATO"); its wording is the two words before and the two
        after it. Each is a 64-bit key: the wording's hash in the high half, the fact's in the
        low half. Two texts that share a wording but not the fact in it say the same thing
        about something else: a copy keeps its facts, a same-template report changes them.
        """
        n = self.words
        if not n:
            return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.uint64)
        count = max(1, n - size + 1)
        first = self.starts[:count]
        last = self.ends[min(size, n) - 1 :][:count]
        # maximal runs of fact words i..j-1 with two plain words on either side
        fact = self.capitalised | self.numbers
        edges = np.diff(np.concatenate(([False], fact, [False])).astype(np.int8))
        run_starts = np.flatnonzero(edges == 1)
        run_ends = np.flatnonzero(edges == -1)
        keep = (run_starts >= _CONTEXT_WORDS) & (run_ends + _CONTEXT_WORDS <= n)
        i, j = run_starts[keep], run_ends[keep]
        hashes = self.span_hashes(
            np.concatenate(
                (first, self.starts[i], self.starts[i - _CONTEXT_WORDS], self.starts[j])
            ),
            np.concatenate(
                (last, self.ends[j - 1], self.ends[i - 1], self.ends[j + _CONTEXT_WORDS - 1])
            ),
        )
        runs = len(i)
        facts = hashes[count : count + runs].astype(np.uint64)
        before = hashes[count + runs : count + 2 * runs].astype(np.uint64)
        after = hashes[count + 2 * runs :].astype(np.uint64)
        wording = _fmix64((before << np.uint64(32)) | after) >> np.uint64(32)
        return hashes[:count], (wording << np.uint64(32)) | facts


def shingle_hashes(text: str, words: int = SHINGLE_WORDS) -> _U32:
    """The 32-bit hashes of the text's ``words``-word shingles, in text order."""
    return _Text.of(text).shingles_and_facts(words)[0]


# --------------------------------------------------------------------------------------------
# MinHash and LSH bands
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _permutations(num_perm: int, seed: int) -> tuple[_U32, _U32]:
    """datasketch's affine32 permutation parameters (a odd, b) for ``num_perm`` and ``seed``."""
    a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
    return np.asarray(a, dtype=np.uint32), np.asarray(b, dtype=np.uint32)


def _fmix32(h: _U32) -> _U32:
    h = h.copy()
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h


_MINHASH_CHUNK: Final = 4096  # shingles per step: bounds the (perms x shingles) matrix


def minhash(hashes: _U32, num_perm: int = NUM_PERM, seed: int = MINHASH_SEED) -> _U32:
    """MinHash signature of a set of 32-bit hashes.

    Exactly what ``datasketch.MinHash(num_perm, seed, scheme="affine32", hashfunc=int)``
    gives after ``update_batch(hashes)`` (a test checks it), computed as one numpy expression
    over the whole set instead of datasketch's per-item Python loop (bench/dedup_quality.py
    --engines measures both).
    """
    a, b = _permutations(num_perm, seed)
    signature = np.full(num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
    for start in range(0, len(hashes), _MINHASH_CHUNK):
        # (permutations x shingles): the minimum runs along contiguous rows
        permuted = np.multiply.outer(a, _fmix32(hashes[start : start + _MINHASH_CHUNK]))
        permuted += b[:, np.newaxis]
        np.minimum(signature, permuted.min(axis=1), out=signature)
    return signature


def minhash_datasketch(hashes: _U32, num_perm: int = NUM_PERM, seed: int = MINHASH_SEED) -> _U32:
    """The same signature as :func:`minhash`, computed by datasketch itself (the reference)."""
    a, b = _permutations(num_perm, seed)
    sketch = MinHash(
        num_perm=num_perm, seed=seed, hashfunc=int, permutations=(a, b), scheme="affine32"
    )
    sketch.update_batch(hashes.tolist())
    return np.asarray(sketch.hashvalues, dtype=np.uint32)


@dataclass(frozen=True)
class FingerprintParams:
    """What a fingerprint depends on; band keys made with other parameters never match."""

    shingle_words: int = SHINGLE_WORDS
    bands: int = LSH_BANDS
    rows: int = LSH_ROWS
    min_words: int = MIN_WORDS
    seed: int = MINHASH_SEED
    engine: str = "numpy"  # or "datasketch": same values, slower

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows

    @property
    def threshold(self) -> float:
        """Jaccard similarity at which two texts share a band with probability ≈ 1/2."""
        return float((1 / self.bands) ** (1 / self.rows))


@dataclass(frozen=True)
class Fingerprint:
    text_hash: str
    bands: tuple[str, ...]  # LSH band keys, e.g. "07:3fa9c2d1e0b4"; empty for too-short texts
    shingles: frozenset[int]  # 32-bit hashes of the word shingles, for verification
    words: int
    facts: frozenset[int] = frozenset()  # names and numbers in their wording, see compare()

    @functools.cached_property
    def fact_wordings(self) -> frozenset[int]:
        """The wordings of :attr:`facts` alone (the high halves of the keys)."""
        return frozenset(key >> 32 for key in self.facts)


class Fingerprinter:
    """Makes fingerprints with one set of parameters (:func:`fingerprint` uses the defaults)."""

    def __init__(self, params: FingerprintParams | None = None) -> None:
        self.params = params or FingerprintParams()
        p = self.params
        if p.engine not in ("numpy", "datasketch"):
            raise ValueError(f"unknown MinHash engine {p.engine!r}")
        self._minhash = minhash if p.engine == "numpy" else minhash_datasketch
        # band keys depend on the parameters that give a signature its meaning
        key = f"newsmon-dedup/w{p.shingle_words}/b{p.bands}x{p.rows}/s{p.seed}".encode()
        salt = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")
        self._band_seeds = _fmix64(
            np.uint64(salt) ^ (np.arange(p.bands, dtype=np.uint64) * _MIX_LENGTH)
        )
        self._row_mix = np.arange(1, p.rows + 1, dtype=np.uint64) * _MIX_LENGTH
        _permutations(p.num_perm, p.seed)  # fail early on bad parameters

    def __call__(self, text: str) -> Fingerprint:
        p = self.params
        analysed = _Text.of(text)
        digest = _digest(analysed.data.tobytes())
        hashes, fact_keys = analysed.shingles_and_facts(p.shingle_words)
        shingles = frozenset(hashes.tolist())
        facts = frozenset(fact_keys.tolist())
        wordings = frozenset((fact_keys >> np.uint64(32)).tolist())
        if analysed.words < p.min_words:
            return _with_wordings(
                Fingerprint(digest, (), shingles, analysed.words, facts), wordings
            )
        signature = self._minhash(hashes, p.num_perm, p.seed)
        # each band's rows folded into 64 bits (MurmurHash3's finaliser is a bijection, so
        # two bands collide only by chance); the key keeps 48 bits
        rows = signature.reshape(p.bands, p.rows).astype(np.uint64) + self._row_mix
        folded = self._band_seeds.copy()
        for row in range(p.rows):
            folded = _fmix64(folded ^ rows[:, row])
        keys = (folded >> np.uint64(16)).tolist()
        bands = tuple(f"{i:02d}:{key:012x}" for i, key in enumerate(keys))
        return _with_wordings(Fingerprint(digest, bands, shingles, analysed.words, facts), wordings)


def _with_wordings(fp: Fingerprint, wordings: frozenset[int]) -> Fingerprint:
    """Fill the cached :attr:`Fingerprint.fact_wordings` from numpy (faster than the property)."""
    fp.__dict__["fact_wordings"] = wordings
    return fp


_DEFAULT_FINGERPRINTER: Fingerprinter | None = None


def fingerprint(text: str) -> Fingerprint:
    """The fingerprint of an article text with the module's parameters.

    A text of fewer than :data:`MIN_WORDS` words gets no band keys: it is never clustered.
    """
    global _DEFAULT_FINGERPRINTER
    if _DEFAULT_FINGERPRINTER is None:
        _DEFAULT_FINGERPRINTER = Fingerprinter()
    return _DEFAULT_FINGERPRINTER(text)
