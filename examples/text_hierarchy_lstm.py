"""Text: sentiment -> emotion -> aspects with an LSTM encoder, on a SYNTHETIC corpus.

``hierarchies/sentiment.yaml`` declares a review's sentiment (positive / negative /
neutral), the emotion that refines it (joy, love, surprise under positive; sadness,
anger, fear under negative; a neutral review has no emotion, so its label is -1) and
the aspects it mentions (multilabel: price, quality, service, delivery, usability).

The reviews are **synthetic**: generated here from a few templates and phrase lists, so
the numbers show the mechanics, not how well a real review model would do. An LSTM
encoder (embedding + LSTM, returning the last hidden state, (B, D)) is plugged into
``tg.compile(h, encoder=...)``; the model is trained with ``tg.fit``, scored with
``tg.evaluate`` and asked for predictions with uncertainty (``samples=16``).

Run:
    python examples/text_hierarchy_lstm.py [--n 3000] [--epochs 12] [--out example-output/]
"""

from __future__ import annotations

import argparse
import os
import random

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import taskgraph as tg
from taskgraph.train import make_loader

HIERARCHY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hierarchies",
                         "sentiment.yaml")
# Some phrases belong to two emotions (e.g. "i cannot believe"): those reviews are
# ambiguous, and a good model says so.
EMOTION = {"joy": ["i am so happy with", "what a joy", "so glad about"],
           "love": ["i absolutely love", "i adore", "so glad about"],
           "surprise": ["pleasantly surprised by", "wow , amazing", "i cannot believe"],
           "sadness": ["sadly disappointed by", "i feel let down by", "oh no ,"],
           "anger": ["furious about", "i am angry at", "i cannot believe"],
           "fear": ["worried about", "i am scared of", "oh no ,"],
           None: ["just a note on", "here is my report on", "some facts about"]}
ASPECT = {"price": ["the price", "the cost"], "quality": ["the quality", "the build"],
          "service": ["the service", "the support staff"],
          "delivery": ["the delivery", "the shipping"], "usability": ["the interface", "the setup"]}
FILLER = ["", "honestly", "overall", "this time", "again", "today"]


def make_corpus(h: tg.Hierarchy, n: int, rng: random.Random) -> tuple[list[str], dict]:
    to_sentiment = dict(dict(h["emotion"].class_parents)["sentiment"])
    texts, labels = [], {"sentiment": [], "emotion": [], "aspects": []}
    for _ in range(n):
        emotion = rng.choice(list(EMOTION))
        aspects = rng.sample(list(ASPECT), rng.randint(1, 2))
        said = " and ".join(rng.choice(ASPECT[a]) for a in aspects)
        texts.append(f"{rng.choice(FILLER)} {rng.choice(EMOTION[emotion])} {said}".strip())
        labels["sentiment"].append(to_sentiment[emotion] if emotion else "neutral")
        labels["emotion"].append(emotion if emotion else -1)  # -1: no emotion
        labels["aspects"].append([float(a in aspects) for a in h["aspects"].classes])
    return texts, labels


class LSTMEncoder(nn.Module):
    """Token ids (B, L), 0 = padding -> the LSTM's last hidden state (B, hidden)."""

    def __init__(self, vocab: int, dim: int = 32, hidden: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.lstm = nn.LSTM(dim, hidden, batch_first=True)
        self.out_features = hidden

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens.long()  # TaskDataset stores features as float
        lengths = (tokens != 0).sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(self.embed(tokens), lengths, batch_first=True,
                                      enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        return h_n[-1]  # (B, hidden)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="synthetic reviews")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="600 reviews, 3 epochs, one thread")
    parser.add_argument("--out", default="example-output/text_hierarchy_lstm")
    args = parser.parse_args()
    if args.quick:
        torch.set_num_threads(1)
        args.n, args.epochs = min(args.n, 600), min(args.epochs, 3)
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)

    h = tg.load_hierarchy(HIERARCHY)
    texts, labels = make_corpus(h, args.n, random.Random(args.seed))
    vocab = {w: i + 1 for i, w in enumerate(sorted({w for t in texts for w in t.split()}))}
    width = max(len(t.split()) for t in texts)
    ids = torch.zeros(len(texts), width, dtype=torch.long)
    for row, text in enumerate(texts):
        words = [vocab[w] for w in text.split()]
        ids[row, :len(words)] = torch.tensor(words)
    print(f"SYNTHETIC corpus: {len(texts)} template-generated reviews, vocabulary "
          f"{len(vocab)} words; e.g. {texts[0]!r}")

    split = int(0.8 * len(texts))
    train = tg.TaskDataset(ids[:split], {k: v[:split] for k, v in labels.items()}, h)
    test = tg.TaskDataset(ids[split:], {k: v[split:] for k, v in labels.items()}, h)
    model = tg.compile(h, encoder=LSTMEncoder(len(vocab) + 1))
    tg.fit(model, make_loader(train, batch_size=32, seed=args.seed), epochs=args.epochs,
           lr=3e-3, progress=False, seed=args.seed)
    report = tg.evaluate(model, make_loader(test, batch_size=256, shuffle=False), samples=16)
    markdown = report.to_markdown()
    print("\nevaluation on held-out synthetic reviews (samples=16)\n" + markdown)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(markdown)

    pred = model.predict(ids[split:], samples=16)
    with_emotions = {parent for _, parent in dict(h["emotion"].class_parents)["sentiment"]}
    sentiments = [pred["sentiment"].classes[k] for k in pred["sentiment"].label.tolist()]
    order = [i for i in pred["emotion"].entropy.argsort().tolist()
             if sentiments[i] in with_emotions]  # reviews with an emotion, most certain first
    print("\npredictions with uncertainty: the 2 most and the 2 least certain emotions (16 "
          "samples of the synapses; std of the probability; MI = mutual information in nats)")
    for i in order[:2] + order[-2:]:
        print(f"  {texts[split + i]!r}")
        for task in ("sentiment", "emotion"):
            p, k = pred[task], int(pred[task].label[i])
            if task == "emotion" and sentiment not in with_emotions:
                print(f"    emotion   -         ({sentiment} reviews have no emotion)")
                continue
            sentiment = p.classes[k]
            print(f"    {task:<9} {p.classes[k]:<9} p={p.probs[i, k]:.2f} "
                  f"std={p.std[i, k]:.3f} MI={p.mutual_info[i]:.4f}")
        a = pred["aspects"]
        found = [c for c, on in zip(a.classes, a.label[i].tolist()) if on]
        print(f"    aspects   {', '.join(found) or '-'}")
    print(f"\nwrote {os.path.join(args.out, 'report.md')}")


if __name__ == "__main__":
    main()
