# mapflow's Python runner: one warm worker process that imports a module once and calls one of
# its functions for task after task, speaking mapflow's line protocol (README, "The line
# protocol"). mapflow embeds this file and runs it as `python3 -c SOURCE DIR MODULE FUNCTION`
# in a working directory that holds the job's shipped files; nothing is installed on any host.
#
# Requests arrive one JSON object a line on the descriptor MAPFLOW_REQUESTS_FD names; responses
# go back, in the same order, on MAPFLOW_RESPONSES_FD. Standard output and error stay the
# task's own: after each task the runner writes MAPFLOW_MARK on both, so that mapflow can cut
# each stream into the output of one task after another.
import importlib
import json
import os
import sys
import traceback

_RUNNER = __file__ if "__file__" in globals() else "<string>"


def _describe(exc, cwd):
    """Python's exception as the protocol's error object: its class, str() and traceback."""
    cls = type(exc)
    name = cls.__qualname__
    if cls.__module__ not in ("builtins", "__main__"):
        name = cls.__module__ + "." + name
    tb = exc.__traceback__
    # The runner's own frames (and importlib's, for an import) come first; the user's code
    # starts after them.
    while tb is not None and (
        tb.tb_frame.f_code.co_filename == _RUNNER
        or str(tb.tb_frame.f_globals.get("__name__", "")).startswith("importlib")
    ):
        tb = tb.tb_next
    try:
        message = str(exc)
    except BaseException as e:  # an exception whose __str__ raises
        message = "<str() of the exception raised %s>" % type(e).__name__
    try:
        if tb is None:
            # No frame of the user's: a SyntaxError still shows its place; an error the
            # runner raised (a function the module lacks) is said by its message alone.
            lines = traceback.format_exception_only(cls, exc)
            if len("".join(lines).rstrip("\n").split("\n")) < 2:
                return {"type": name, "message": message, "traceback": ""}
        else:
            lines = traceback.format_exception(cls, exc, tb)
    except BaseException:
        lines = traceback.format_list(traceback.extract_tb(tb)) + ["%s: %s\n" % (name, message)]
    text = "".join(lines).rstrip("\n").replace(cwd + os.sep, "")
    # An import error raised inside importlib shows its machinery: keep the user's frames.
    text = "\n".join(
        l for l in text.split("\n") if "<frozen importlib._bootstrap" not in l
    )
    return {"type": name, "message": message, "traceback": text}


def _default(o):
    # numpy's scalars and arrays, and anything else that turns itself into plain values.
    tolist = getattr(o, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)


_encode = json.JSONEncoder(allow_nan=False, default=_default, separators=(",", ":")).encode


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def main():
    rfd = int(os.environ.pop("MAPFLOW_REQUESTS_FD"))
    wfd = int(os.environ.pop("MAPFLOW_RESPONSES_FD"))
    mark = os.environ.pop("MAPFLOW_MARK", "").encode()
    module_dir, module_name, func_name = sys.argv[1], sys.argv[2], sys.argv[3]
    cwd = os.getcwd()
    try:
        sys.stdout.reconfigure(line_buffering=True)
    except Exception:
        pass

    def end_output():
        # The task's output ends here: flush Python's buffers, then mark both streams.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        if mark:
            for fd in (1, 2):
                try:
                    _write_all(fd, mark)
                except OSError:
                    pass

    try:
        sys.path.insert(0, os.path.join(cwd, module_dir) if module_dir else cwd)
        module = importlib.import_module(module_name)
        fn = getattr(module, func_name, None)
        if fn is None:
            raise AttributeError(
                "module %r has no function %r" % (module_name, func_name)
            )
        if not callable(fn):
            raise TypeError(
                "%s.%s is a %s, not a function"
                % (module_name, func_name, type(fn).__name__)
            )
    except BaseException as e:
        end_output()
        err = _describe(e, cwd)
        _write_all(wfd, (json.dumps({"ready": False, "error": err}) + "\n").encode())
        return 1
    end_output()
    _write_all(wfd, (json.dumps({"ready": True, "marks": bool(mark), "pid": os.getpid()}) + "\n").encode())

    # The task's identity goes into os.environ as for exec tasks, written to its mapping
    # directly: os.environ's own setter also calls putenv, which cost more than the rest of a
    # small task. Programs the function starts do not inherit these three.
    environ = getattr(os.environ, "_data", None)
    if not isinstance(environ, dict) or os.name != "posix":
        environ = None
    buf = bytearray()
    while True:
        chunk = os.read(rfd, 1 << 16)
        if not chunk:
            return 0
        buf += chunk
        if b"\n" not in chunk:
            continue
        end = buf.rindex(b"\n")
        lines = bytes(buf[:end]).split(b"\n")
        del buf[: end + 1]
        for line in lines:
            if not line:
                continue
            req = json.loads(line)
            index = req["index"]
            if environ is not None:
                environ[b"MAPFLOW_TASK_INDEX"] = b"%d" % index
                environ[b"MAPFLOW_TASK_NAME"] = req.get("name", "").encode()
                environ[b"MAPFLOW_ATTEMPT"] = b"%d" % req.get("attempt", 1)
            else:
                os.environ["MAPFLOW_TASK_INDEX"] = str(index)
                os.environ["MAPFLOW_TASK_NAME"] = req.get("name", "")
                os.environ["MAPFLOW_ATTEMPT"] = str(req.get("attempt", 1))
            try:
                result = fn(**req["params"])
            except BaseException as e:
                out = json.dumps({"index": index, "error": _describe(e, cwd)})
            else:
                try:
                    out = '{"index":%d,"result":%s}' % (index, _encode(result))
                except (TypeError, ValueError, RecursionError) as e:
                    err = {
                        "type": type(e).__name__,
                        "message": "the result of %s cannot be sent as JSON: %s"
                        % (func_name, e),
                        "traceback": "",
                    }
                    out = json.dumps({"index": index, "error": err})
            end_output()
            # Each response goes out before the next task starts: the driver times a task
            # from its predecessor's response, and a batch would charge one task's time to
            # another.
            _write_all(wfd, (out + "\n").encode())


if __name__ == "__main__":
    sys.exit(main())
