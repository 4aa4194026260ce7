"""The same add as a program, for the exec peer of bench/py_add.mf: one Python start per task."""
import json
import sys

from add import add

print(json.dumps(add(int(sys.argv[1]), int(sys.argv[2]))))
