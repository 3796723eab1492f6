"""What every third-party client script of Perch's e2e tests does around its own steps.

Each script is run by Debian's python3 with `JID PASSWORD PORT CA_FILE` first, then
its own arguments; it logs in with slixmpp (python3-slixmpp) to the harness server on
loopback, trusting the harness CA, prints what it saw line by line on stdout (the
test reads it), may take commands line by line on stdin, and exits 0 once its work is
done or 1 when not done within its deadline.

Python puts a script's own directory first on its import path, so the scripts
beside this file import it as `slixrun`.
"""

import asyncio
import sys

import slixmpp


class Script:
    """The client, its event loop, and the future that ends the run."""

    def __init__(self, plugins, extra_args=()):
        names = ("jid", "password", "port", "ca_file") + tuple(extra_args)
        values = sys.argv[1 : 1 + len(names)]
        if len(values) != len(names):
            sys.exit(f"usage: {sys.argv[0]} {' '.join(n.upper() for n in names)}")
        self.args = dict(zip(names, values))
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.done = self.loop.create_future()
        self.client = slixmpp.ClientXMPP(self.args["jid"], self.args["password"])
        self.client.ca_certs = self.args["ca_file"]
        for plugin in plugins:
            self.client.register_plugin(plugin)

    def arg(self, name):
        return self.args[name]

    def finish(self, coro):
        """Runs `coro` as a task; its end (or its exception) ends the run."""

        def ended(task):
            if self.done.done():
                return
            if task.exception() is not None:
                self.done.set_exception(task.exception())
            else:
                self.done.set_result(True)

        self.loop.create_task(coro).add_done_callback(ended)

    async def line(self):
        """The next line of stdin, stripped ("" at its end)."""
        return (await self.loop.run_in_executor(None, sys.stdin.readline)).strip()

    def run(self, timeout=60, linger=0.0, on_timeout=lambda: "timed out"):
        """Connects, waits for the end of the run, then `linger` seconds (for the
        last stanzas to leave); 0 when it ended, 1 after `timeout` seconds."""
        self.client.connect(address=("127.0.0.1", int(self.args["port"])))
        try:
            self.loop.run_until_complete(asyncio.wait_for(self.done, timeout))
            if linger:
                self.loop.run_until_complete(asyncio.sleep(linger))
        except asyncio.TimeoutError:
            print(on_timeout(), file=sys.stderr, flush=True)
            return 1
        finally:
            self.client.disconnect()
        return 0
