"""A stand-in for a training script: takes --lr and --depth, prints a JSON result line."""
import argparse
import json
import math

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, required=True)
parser.add_argument("--depth", type=int, required=True)
args = parser.parse_args()

print(f"training with lr={args.lr} depth={args.depth}")
score = round(1 - abs(math.log10(args.lr) + 1.5) / 10 - 1 / (args.depth + 1), 4)
print(json.dumps({"lr": args.lr, "depth": args.depth, "score": score}))
