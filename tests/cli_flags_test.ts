import assert from "node:assert/strict";
import { ExitError, FlagError, FlagSet, HELP_REQUESTED } from "../lib/cli/flags.ts";
import { goJSON, goList, goQuote, logLine, MemorySink } from "../lib/cli/io.ts";

function layersFlags(errorHandling: "exit" | "continue" = "exit") {
  const io = { out: new MemorySink(), err: new MemorySink() };
  const fs = new FlagSet("layers", errorHandling, io);
  fs.string(["-run", "R"], "/run/x", "Root of the runtime state tree");
  fs.string(["-graph", "g"], "", "Root of the storage tree");
  fs.string(["-storage-driver", "s"], "vfs", "Storage driver to use ($STORAGE_DRIVER)");
  fs.list(["-storage-opt"], [], "Set storage driver options ($STORAGE_OPTS)");
  fs.bool(["-debug", "D"], false, "Print debugging information");
  fs.bool(["-tree", "t"], false, "Use a tree");
  fs.bool(["-json", "j"], false, "Prefer JSON output");
  fs.list(["-name", "n"], [], "Layer name");
  return { fs, io };
}

Deno.test("cli flags: short, long, grouped and valued forms", () => {
  const { fs } = layersFlags();
  fs.parse(["-jt", "--run", "/r", "-g=/g", "-n", "a", "--name='b'", "rest", "-j"]);
  assert.equal(fs.getBool("json"), true);
  assert.equal(fs.getBool("t"), true);
  assert.equal(fs.getString("run"), "/r");
  assert.equal(fs.getString("graph"), "/g");
  assert.deepEqual(fs.getList("name"), ["a", "b"]);
  assert.deepEqual(fs.args, ["rest", "-j"]);
});

Deno.test("cli flags: -- ends the flags and a lone - is an argument", () => {
  const { fs } = layersFlags();
  fs.parse(["-j", "--", "-t"]);
  assert.deepEqual(fs.args, ["-t"]);
  fs.parse(["-", "-t"]);
  assert.deepEqual(fs.args, ["-", "-t"]);
});

Deno.test("cli flags: list flags append to their initial values", () => {
  const { fs } = layersFlags();
  fs.list(["-opt"], ["a=b"], "Opts");
  fs.parse(["--opt", "c=d"]);
  assert.deepEqual(fs.getList("opt"), ["a=b", "c=d"]);
  assert.match(fs.printDefaults(), /--opt=\[a=b\] +Opts/);
});

Deno.test("cli flags: unknown flags print the reference's message and exit 125", () => {
  for (
    const [arg, msg] of [
      ["--bogus", "flag provided but not defined: --bogus"],
      ["-q", "flag provided but not defined: -q"],
      ["-jx", "flag provided but not defined: -jx"],
      ["-=x", "bad flag syntax: -=x"],
      [
        "-j=maybe",
        'invalid boolean value "maybe" for  -j: strconv.ParseBool: parsing "maybe": ' +
        "invalid syntax",
      ],
    ]
  ) {
    const { fs, io } = layersFlags();
    assert.throws(() => fs.parse([arg]), (e) => e instanceof ExitError && e.code === 125);
    assert.equal(io.err.text, `${msg}\nSee 'containers-storage layers --help'.\n`);
    assert.equal(io.out.text, "");
  }
});

Deno.test("cli flags: a value flag at the end needs an argument", () => {
  const { fs, io } = layersFlags("continue");
  assert.throws(() => fs.parse(["-g"]), (e) => e instanceof FlagError);
  assert.match(io.err.text, /^flag needs an argument: -g\n/);
});

Deno.test("cli flags: --help and -h call usage and report help", () => {
  for (const arg of ["--help", "-help", "-h"]) {
    const { fs } = layersFlags("continue");
    let called = 0;
    fs.usage = () => called++;
    assert.throws(
      () => fs.parse([arg]),
      (e) => e instanceof FlagError && e.message === HELP_REQUESTED,
    );
    assert.equal(called, 1);
  }
});

Deno.test("cli flags: option table is laid out like mflag's tabwriter", () => {
  const { fs } = layersFlags();
  assert.equal(
    fs.printDefaults(),
    [
      "",
      "  --debug, -D                 Print debugging information",
      "  --graph, -g                 Root of the storage tree",
      "  --json, -j                  Prefer JSON output",
      "  --name, -n=[]               Layer name",
      "  --run, -R=/run/x            Root of the runtime state tree",
      "  --storage-driver, -s=vfs    Storage driver to use ($STORAGE_DRIVER)",
      "  --storage-opt=[]            Set storage driver options ($STORAGE_OPTS)",
      "  --tree, -t                  Use a tree",
      "",
    ].join("\n"),
  );
});

Deno.test("cli flags: defaults under $HOME are shown with ~", () => {
  const home = Deno.env.get("HOME");
  Deno.env.set("HOME", "/home/someone");
  try {
    const { fs } = layersFlags();
    fs.string(["-x"], "/home/someone/.local/share", "X");
    assert.match(fs.printDefaults(), / {2}--x=~\/\.local\/share +X\n/);
  } finally {
    if (home === undefined) Deno.env.delete("HOME");
    else Deno.env.set("HOME", home);
  }
});

Deno.test("cli io: Go formatting helpers", () => {
  assert.equal(goList(["a", "b"]), "[a b]");
  assert.equal(goList([]), "[]");
  assert.equal(goJSON({ a: "<&>", b: [1] }), '{"a":"\\u003c\\u0026\\u003e","b":[1]}\n');
  assert.equal(goQuote('a "b"\n\x01é'), '"a \\"b\\"\\n\\x01é"');
  const t = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
  assert.equal(
    logLine("debug", "Root: /x", t).replace(/time="[^"]*"/, "T"),
    'T level=debug msg="Root: /x"\n',
  );
  assert.match(logLine("debug", "plain"), /level=debug msg=plain\n$/);
  assert.match(logLine("warning", 'a "b"'), /level=warning msg="a \\"b\\""\n$/);
});
