"""slow_import's add as a program, for the exec peer: every task pays the import."""
import json
import sys

from slow_import import add

print(json.dumps(add(int(sys.argv[1]), int(sys.argv[2]))))
