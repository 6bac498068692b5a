"""decode_classes: consistent class paths, compared with an exhaustive search."""

from __future__ import annotations

import itertools

import pytest
import torch

import taskgraph as tg
from model_test_utils import hierarchy_path
from taskgraph.model.decode import decode_classes


def _parent_index(h, child: str, parent: str) -> dict[int, int]:
    """child class index -> parent class index, from the YAML's class_parents."""
    mapping = h[child].class_parent_map(parent)
    return {h[child].classes.index(c): h[parent].classes.index(p) for c, p in mapping.items()}


def _brute_force(h, probs, chain, row):
    """The best joint assignment over ``chain`` (parent first) by enumerating every path.

    A parent class that no child class maps to leaves the child unconstrained.
    """
    links = [_parent_index(h, c, p) for p, c in zip(chain, chain[1:])]
    best, best_score = None, -1.0
    sizes = [len(h[t].classes) for t in chain]
    for combo in itertools.product(*(range(k) for k in sizes)):
        ok = True
        for depth, link in enumerate(links):
            parent_class, child_class = combo[depth], combo[depth + 1]
            has_children = parent_class in link.values()
            if has_children and link[child_class] != parent_class:
                ok = False
                break
        if not ok:
            continue
        score = 1.0
        for t, k in zip(chain, combo):
            score *= float(probs[t][row, k])
        if score > best_score:
            best, best_score = combo, score
    return best


def _random_probs(h, tasks, B, seed, sharp=3.0):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for t in tasks:
        logits = torch.randn(B, len(h[t].classes), generator=g) * sharp
        out[t] = logits.softmax(-1)
    return out


def test_animals_joint_best_beats_greedy():
    h = tg.load_hierarchy(hierarchy_path("animals"))
    probs = {
        # herbivore wins alone, but the best species (eagle) is a carnivore
        "diet": torch.tensor([[0.5, 0.4, 0.1],
                              # omnivore wins alone; eagle then cat are the likely species
                              [0.1, 0.2, 0.7],
                              # greedy is already consistent (carnivore, cat)
                              [0.1, 0.8, 0.1]]),
        "species": torch.tensor([[0.05, 0.05, 0.1, 0.8],
                                 [0.3, 0.05, 0.3, 0.35],
                                 [0.6, 0.1, 0.1, 0.2]]),
    }
    greedy_diet = probs["diet"].argmax(-1).tolist()
    greedy_species = probs["species"].argmax(-1).tolist()
    parent = _parent_index(h, "species", "diet")
    assert parent[greedy_species[0]] != greedy_diet[0]  # greedy is inconsistent here
    assert parent[greedy_species[1]] != greedy_diet[1]
    out = decode_classes(h, probs)
    # row 0: carnivore-eagle 0.32 > herbivore-cow 0.05; row 1: carnivore-eagle 0.07 >
    # omnivore-dog 0.035 > herbivore-cow 0.03
    assert out["diet"].tolist() == [1, 1, 1]
    assert out["species"].tolist() == [3, 3, 0]
    for b in range(3):
        assert tuple(v[b].item() for v in (out["diet"], out["species"])) == \
            _brute_force(h, probs, ["diet", "species"], b)


def test_animals_random_rows_match_exhaustive_search():
    h = tg.load_hierarchy(hierarchy_path("animals"))
    probs = _random_probs(h, ["diet", "species"], 300, seed=0)
    out = decode_classes(h, probs)
    parent = _parent_index(h, "species", "diet")
    for b in range(300):
        d, s = int(out["diet"][b]), int(out["species"][b])
        assert parent[s] == d
        assert (d, s) == _brute_force(h, probs, ["diet", "species"], b)


def test_three_level_chain_matches_exhaustive_search():
    h = tg.load_hierarchy(hierarchy_path("fashion"))
    chain = ["kind", "group", "item"]
    probs = _random_probs(h, chain, 200, seed=1)
    out = decode_classes(h, probs)
    item_group = _parent_index(h, "item", "group")
    group_kind = _parent_index(h, "group", "kind")
    for b in range(200):
        k, g, i = (int(out[t][b]) for t in chain)
        assert item_group[i] == g and group_kind[g] == k
        assert (k, g, i) == _brute_force(h, probs, chain, b)


def test_child_class_always_agrees_with_decoded_parent_class():
    h = tg.load_hierarchy(hierarchy_path("fashion"))
    g = torch.Generator().manual_seed(2)
    B = 2000
    probs = {t: torch.rand(B, len(h[t].classes), generator=g) for t in ("kind", "group", "item")}
    probs = {t: p / p.sum(-1, keepdim=True) for t, p in probs.items()}
    out = decode_classes(h, probs)
    item_group = torch.tensor([_parent_index(h, "item", "group")[i] for i in range(10)])
    group_kind = torch.tensor([_parent_index(h, "group", "kind")[i] for i in range(6)])
    assert torch.equal(item_group[out["item"]], out["group"])
    assert torch.equal(group_kind[out["group"]], out["kind"])
    # consistency is not bought by always choosing the same path
    assert len(set(out["item"].tolist())) == 10


def test_parent_class_without_child_classes():
    """sentiment: 'neutral' has no emotion; under it the emotion is -1 (not applicable)."""
    h = tg.load_hierarchy(hierarchy_path("sentiment"))
    assert "neutral" not in h["emotion"].class_parent_map("sentiment").values()
    probs = {"sentiment": torch.tensor([[0.1, 0.1, 0.8],     # neutral clearly
                                        [0.6, 0.3, 0.1],     # positive, but ...
                                        [0.4, 0.35, 0.25]]),
             "emotion": torch.tensor([[0.05, 0.05, 0.05, 0.05, 0.7, 0.1],
                                      [0.02, 0.02, 0.02, 0.04, 0.8, 0.1],  # ... anger
                                      [0.3, 0.0, 0.0, 0.0, 0.0, 0.7]])}
    out = decode_classes(h, probs)
    # row 0: neutral (0.8 * best emotion 0.7) beats negative-anger (0.1 * 0.7)
    # row 1: negative-anger 0.24 > neutral 0.08 > positive-joy 0.012
    # row 2: negative-fear 0.245 > neutral 0.175 > positive-joy 0.12
    assert out["sentiment"].tolist() == [2, 1, 1]
    assert out["emotion"].tolist()[1:] == [4, 5]
    assert out["emotion"][0].item() == -1  # neutral has no emotion: never a positive one
    rand = _random_probs(h, ["sentiment", "emotion"], 300, seed=3)
    dec = decode_classes(h, rand)
    parent = _parent_index(h, "emotion", "sentiment")
    for b in range(300):
        s, e = int(dec["sentiment"][b]), int(dec["emotion"][b])
        best_s, best_e = _brute_force(h, rand, ["sentiment", "emotion"], b)
        assert s == best_s
        assert e == (-1 if s not in parent.values() else best_e)
        if s != 2:
            assert parent[e] == s


def test_tasks_without_class_links_use_argmax():
    h = tg.load_hierarchy(hierarchy_path("animals"))
    probs = {"diet": torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])}  # no species given
    assert decode_classes(h, probs)["diet"].tolist() == [1, 0]
    plain = tg.load_hierarchy({"taskgraph": 1, "tasks": {
        "a": {"type": "multiclass", "classes": 3},
        "b": {"type": "multiclass", "classes": 2, "parents": ["a"]}}})
    p = {"a": torch.tensor([[0.1, 0.2, 0.7]]), "b": torch.tensor([[0.9, 0.1]])}
    out = decode_classes(plain, p)
    assert out["a"].tolist() == [2] and out["b"].tolist() == [0]


@pytest.mark.parametrize("B", [1, 17])
def test_output_shapes_and_dtype(B):
    h = tg.load_hierarchy(hierarchy_path("fashion"))
    probs = _random_probs(h, ["kind", "group", "item"], B, seed=4)
    out = decode_classes(h, probs)
    assert set(out) == {"kind", "group", "item"}
    for v in out.values():
        assert v.shape == (B,) and v.dtype == torch.long
