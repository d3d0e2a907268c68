"""The in-sandbox driver for function-plus-asserts tests (HumanEval style).

`HARNESS` is the source of /sandbox/main.py. With an entry point it runs, in this order:
1. compile both files (a syntax error in the solution is a runtime error, not a crash of ours);
2. the test file, in its own namespace with a private copy of the builtins, *before* any solution
   code runs, so `check` and the names it imports are bound before the solution can touch them;
3. the solution (prompt + completion) in a separate namespace named `solution` (so code guarded by
   `if __name__ == "__main__"` stays quiet);
4. names the tests need from the prompt (helpers such as `encode_cyclic`) are copied over, but never
   one that the test file already defines or that shadows a builtin (`abs = lambda x: 0` must not
   reach the checker);
5. `check(entry_point)`, where every value the candidate returns must be made of exact built-in
   types (so an object whose `__eq__` always answers True fails);
6. only when `check` returns: read the nonce from stdin, write it on its own line, os._exit(0).
All of it runs inside one function, so nothing the checker relies on is an attribute of
`__main__` that the solution could reassign.

Without an entry point (MBPP style: the tests are bare `assert f(x) == y` lines) the solution runs
first, then the test file in the fresh namespace, where every function of the solution is wrapped
in the same plain-value guard.

The nonce never appears in any file the program can read, so exiting early with status 0, raising
at import, or replacing `check` cannot produce it. A program written against this very harness can
still read stdin itself or rewrite objects through `gc`; the process boundary, not this script, is
the security line, and that is what the sandbox is for.
"""

EXIT_ASSERTION = 3  # check() raised AssertionError: a plain wrong answer

HARNESS = r'''
def _main():
    # Everything the checker relies on is a local captured before any solution code runs: the
    # solution may rebind builtins (set, exec, AssertionError...) but not these names.
    import builtins, os, sys, traceback
    write, read, exit_now = os.write, os.read, os._exit
    pristine = dict(builtins.__dict__)
    exec_, list_, set_, type_, iter_, id_, callable_ = exec, list, set, type, iter, id, callable
    AssertionError_, function_type = AssertionError, type_(_main)
    format_exc = traceback.format_exc
    here = os.path.dirname(os.path.abspath(__file__))
    entry = sys.argv[1]  # "" means: the tests are plain asserts, run after the solution
    plain_types = (int, float, complex, bool, str, bytes, type(None), list, tuple, dict, set, frozenset)
    containers = (list, tuple, set, frozenset)

    def load(name):
        with open(os.path.join(here, name), encoding="utf-8") as fh:
            return compile(fh.read(), name, "exec")

    def flush():
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass

    def plain(value):
        # Exact built-in types all the way down: an object whose __eq__ always says True, or a
        # str subclass that compares equal to anything, is not an answer.
        stack, seen = [value], set_()
        while stack:
            item = stack.pop()
            kind = type_(item)
            if kind not in plain_types:
                return False
            if kind in containers or kind is dict:
                if id_(item) in seen:
                    continue
                seen.add(id_(item))
                stack.extend(iter_(item))
                if kind is dict:
                    stack.extend(iter_(item.values()))
        return True

    def guard(function):
        def guarded(*args, **kwargs):
            result = function(*args, **kwargs)
            if not plain(result):
                raise AssertionError_(f"{function.__name__} returned a {type_(result).__name__}, "
                                      "not a plain built-in value")
            return result
        return guarded

    tests_code, solution_code = load("tests.py"), load("solution.py")
    tests_ns = {"__name__": "tests", "__builtins__": dict(pristine)}
    if entry:
        exec_(tests_code, tests_ns)
        check = tests_ns.get("check")
        if not callable_(check):
            write(2, b"harness: the test file defines no check(candidate) function\n")
            exit_now(4)
    solution_ns = {"__name__": "solution", "__builtins__": builtins}
    exec_(solution_code, solution_ns)
    if entry and entry not in solution_ns:
        raise NameError(f"the solution does not define the entry point {entry!r}")
    for name, value in list_(solution_ns.items()):
        if name not in tests_ns and name not in pristine:
            # Plain asserts call the solution's functions by name: guard each of them.
            tests_ns[name] = guard(value) if not entry and type_(value) is function_type else value
    try:
        if entry:
            check(guard(solution_ns[entry]))
        else:
            exec_(tests_code, tests_ns)
    except AssertionError_:
        flush()
        write(2, format_exc().encode("utf-8", "replace"))
        exit_now(@EXIT_ASSERTION@)
    flush()
    nonce = read(0, 256).strip()
    write(1, b"\n" + nonce + b"\n")
    exit_now(0)


_main()
'''.replace("@EXIT_ASSERTION@", str(EXIT_ASSERTION))
