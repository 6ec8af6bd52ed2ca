"""The fixed evaluation text set of the accuracy flow: sentences from a small seeded grammar.

The grammar and its word lists were written for this project. :func:`sentences` draws from
it with :class:`random.Random` (whose sequence Python keeps stable across versions for a
given seed), drops repeats, and returns the same list on every machine. The sentences span
several topics and shapes (statements, questions, sentences with a clause), so that their
embeddings spread out and retrieval among them is a real test.
"""

from __future__ import annotations

import hashlib
import random

__all__ = ["DEFAULT_COUNT", "DEFAULT_SEED", "digest", "sentences"]

#: Sentences in the evaluation set.
DEFAULT_COUNT = 256
#: Seed of the draw.
DEFAULT_SEED = 2026

_TOPICS = {
    "kitchen": {
        "who": ["the baker", "my grandmother", "a young chef", "the night cook", "our neighbour",
                "the pastry student"],
        "does": ["slices", "burns", "stirs", "tastes", "bakes", "peels", "freezes", "roasts"],
        "what": ["the onions", "a loaf of rye bread", "the tomato soup", "fresh apricots",
                 "a pot of lentils", "the lemon tart", "two dozen eggs", "the garlic butter"],
        "where": ["in the small kitchen", "before dinner", "on a cold morning",
                  "for the village fair", "after the market closes"],
    },
    "sea": {
        "who": ["the old sailor", "a fishing crew", "the lighthouse keeper", "a diver",
                "the harbour pilot", "a marine biologist"],
        "does": ["repairs", "tows", "watches", "charts", "paints", "anchors", "unloads",
                 "follows"],
        "what": ["the wooden boat", "a school of mackerel", "the rusty buoy", "the tide tables",
                 "a torn fishing net", "the ferry to the island", "the coral reef"],
        "where": ["near the harbour", "during the storm", "at low tide", "off the rocky coast",
                  "before sunrise"],
    },
    "code": {
        "who": ["the compiler engineer", "a new intern", "the release manager",
                "our build server", "the security team", "a tired programmer"],
        "does": ["rewrites", "profiles", "deletes", "reviews", "tests", "deploys", "documents",
                 "debugs"],
        "what": ["the memory allocator", "a flaky unit test", "the login page",
                 "the database schema", "a slow sorting routine", "the network driver",
                 "the configuration parser"],
        "where": ["late on friday", "before the release", "in the staging environment",
                  "after the outage", "during the code freeze"],
    },
    "farm": {
        "who": ["the farmer", "a beekeeper", "the shepherd", "a seasonal worker",
                "the vet", "my uncle"],
        "does": ["feeds", "plants", "harvests", "shears", "waters", "counts", "moves", "fences"],
        "what": ["the sheep", "a field of barley", "the young apple trees", "the beehives",
                 "the dairy cows", "a row of potatoes", "the hungry goats"],
        "where": ["at dawn", "in the north meadow", "before the first frost",
                  "through the long summer", "behind the red barn"],
    },
    "city": {
        "who": ["the bus driver", "a street musician", "the mayor", "a cyclist",
                "the night guard", "a taxi driver"],
        "does": ["crosses", "blocks", "cleans", "photographs", "closes", "inspects", "avoids",
                 "opens"],
        "what": ["the main bridge", "a crowded square", "the old train station",
                 "the new library", "a narrow alley", "the flower market", "the tram line"],
        "where": ["during rush hour", "in the pouring rain", "on a quiet sunday",
                  "after midnight", "before the parade"],
    },
    "science": {
        "who": ["the chemist", "a graduate student", "the astronomer", "our lab technician",
                "the geologist", "a physics teacher"],
        "does": ["measures", "heats", "observes", "weighs", "dissolves", "records", "cools",
                 "samples"],
        "what": ["the copper wire", "a distant comet", "the salt solution", "the basalt rock",
                 "a beam of laser light", "the bacterial culture", "the lake water"],
        "where": ["in the basement laboratory", "with great care", "every few hours",
                  "under the microscope", "at the mountain observatory"],
    },
    "music": {
        "who": ["the violinist", "a choir of children", "the drummer", "the conductor",
                "an old pianist", "the sound engineer"],
        "does": ["tunes", "rehearses", "records", "mixes", "plays", "hums", "arranges",
                 "practises"],
        "what": ["the cello suite", "a slow waltz", "the new album", "an old folk song",
                 "the brass section", "the church organ", "a jazz standard"],
        "where": ["in the empty hall", "before the concert", "late into the night",
                  "at the summer festival", "for the radio show"],
    },
    "sport": {
        "who": ["the goalkeeper", "a marathon runner", "the tennis coach", "the home team",
                "a young swimmer", "the referee"],
        "does": ["trains", "passes", "catches", "kicks", "stretches", "wins", "loses",
                 "watches"],
        "what": ["the final match", "a heavy medicine ball", "the relay race", "the penalty",
                 "the slippery ball", "a long training session", "the championship trophy"],
        "where": ["in the last minute", "on the muddy pitch", "at the indoor pool",
                  "despite the injury", "in front of the crowd"],
    },
}

_ADVERBS = ["slowly", "carefully", "quickly", "quietly", "proudly", "nervously", "again",
            "happily"]
_CLAUSES = ["because the weather turned", "while everyone else sleeps",
            "although nobody asked", "since the old plan failed", "so that the others can rest",
            "as the lights go out"]


def _sentence(rng: random.Random) -> str:
    topic = _TOPICS[rng.choice(sorted(_TOPICS))]
    who, does = rng.choice(topic["who"]), rng.choice(topic["does"])
    what, where = rng.choice(topic["what"]), rng.choice(topic["where"])
    shape = rng.randrange(5)
    if shape == 0:
        text = f"{who} {does} {what} {where}."
    elif shape == 1:
        text = f"{where}, {who} {rng.choice(_ADVERBS)} {does} {what}."
    elif shape == 2:
        verb = does[:-2] if does.endswith(("shes", "ches", "sses", "xes")) else does[:-1]
        text = f"why does {who} {verb} {what} {where}?"
    elif shape == 3:
        text = f"{who} {does} {what} {rng.choice(_CLAUSES)}."
    else:
        other = _TOPICS[rng.choice(sorted(_TOPICS))]
        text = (f"{who} {does} {what}, and {rng.choice(other['who'])} "
                f"{rng.choice(other['does'])} {rng.choice(other['what'])}.")
    return text[0].upper() + text[1:]


def sentences(count: int = DEFAULT_COUNT, *, seed: int = DEFAULT_SEED) -> list[str]:
    """``count`` distinct sentences drawn from the grammar with ``seed``, in draw order.

    Raises
    ------
    TypeError, ValueError
        ``count`` is not an integer from 1 to 4096, or ``seed`` is not an integer.
    """
    for name, value, lo, hi in (("count", count, 1, 4096), ("seed", seed, 0, None)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an integer, not {value!r}")
        if value < lo or (hi is not None and value > hi):
            allowed = f"from {lo} to {hi}" if hi is not None else f"at least {lo}"
            raise ValueError(f"{name} must be {allowed}, not {value}")
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        text = _sentence(rng)
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def digest(texts: list[str]) -> str:
    """sha256 of the texts, each followed by a newline (a cache key)."""
    return hashlib.sha256("".join(t + "\n" for t in texts).encode("utf-8")).hexdigest()
