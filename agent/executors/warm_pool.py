"""Warm Claude Code CLIs: for each role the agent serves, CLI processes started ahead of need, so an attempt does not
wait for the CLI's start-up (0.3-1.6 s and ~0.5-1 s of CPU per process on the machines measured).

A warm CLI is started with everything that is the role's (system prompt, tools, model, limits) and nothing that is
an attempt's: its MCP tool server reads the attempt from a ToolBinding bound when the attempt begins, and it runs in
a neutral working directory (the CLI has no built-in tools, so its cwd is only text in its reminders; every file a
tool touches is resolved in the attempt's workspace by the tool itself).

Each warm CLI serves at most `attempts_per_cli` attempts, one at a time, each in a conversation of its own: between
two attempts the pool sends `/clear`, which gives the CLI a new session (new session id, empty history, zeroed
cost totals, so per-attempt budgets hold), and a CLI whose attempt did not end in a result (cancelled, broken) is
never reused. With `attempts_per_cli` = 1 every process serves exactly one attempt and is then discarded.
"""

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog
from claude_agent_sdk import ClaudeAgentOptions, ClaudeSDKClient, ConversationResetMessage, ResultMessage

from agent.executors.provider_signals import RetryAfterWatch
from agent.tools import ToolBinding
from shared.roles import LoadedRole

log = structlog.get_logger(__name__)

# How long a `/clear` may take before the CLI is given up on (it answers locally, without calling the model).
RESET_TIMEOUT_SECONDS = 10.0

WarmOptions = Callable[[LoadedRole, ToolBinding, RetryAfterWatch], ClaudeAgentOptions]


@dataclass(eq=False)
class WarmCli:
    """One started CLI process, its tool binding and its stderr watch, and how many attempts it served."""

    role: LoadedRole
    client: ClaudeSDKClient
    binding: ToolBinding
    watch: RetryAfterWatch
    process: Any  # the transport's anyio Process: the SDK has no public handle on it
    attempts: int = 0
    session_ids: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def served(self, session_id: str | None) -> None:
        """Count an attempt this CLI ran (in session `session_id`)."""
        self.attempts += 1
        if session_id:
            self.session_ids.append(session_id)

    def alive(self) -> bool:
        return self.process.returncode is None

    async def close(self) -> None:
        """Stop the CLI and wait for it (the SDK terminates, then kills, within its own bounds)."""
        self.binding.unbind()
        await self.client.disconnect()


async def launch_warm_cli(role: LoadedRole, options: WarmOptions) -> WarmCli:
    """Start a CLI for `role` and wait until it has answered the SDK's initialize request."""
    binding, watch = ToolBinding(), RetryAfterWatch()
    client = ClaudeSDKClient(options(role, binding, watch))
    await client.connect()
    process = getattr(getattr(client, "_transport", None), "_process", None)
    if process is None:
        await client.disconnect()
        raise RuntimeError("the Claude Agent SDK's transport has no process handle: warm CLIs need a newer pool")
    return WarmCli(role, client, binding, watch, process)


async def reset_conversation(cli: WarmCli) -> bool:
    """Give the CLI a fresh session for its next attempt; False when it did not confirm one."""
    reset, result = False, None
    async with asyncio.timeout(RESET_TIMEOUT_SECONDS):
        await cli.client.query("/clear")
        async for message in cli.client.receive_response():
            reset = reset or isinstance(message, ConversationResetMessage)
            result = message if isinstance(message, ResultMessage) else result
    # The new session must differ from every earlier one of this process.
    return reset and result is not None and not result.is_error and result.session_id not in cli.session_ids


class WarmCliPool:
    """`per_role` warm CLIs per role, replaced in the background as attempts use them up or they die."""

    def __init__(
        self,
        options: WarmOptions,
        *,
        per_role: int,
        attempts_per_cli: int,
        wait_seconds: float,
        launch: Callable[[LoadedRole, WarmOptions], Awaitable[WarmCli]] = launch_warm_cli,
    ) -> None:
        self._options = options
        self._per_role = per_role
        self._attempts_per_cli = attempts_per_cli
        self._wait_seconds = wait_seconds
        self._launch = launch
        self._ready: dict[str, list[WarmCli]] = {}
        self._starting: dict[str, int] = {}  # launches and resets under way
        self._owned: dict[str, int] = {}  # ready + starting + serving an attempt
        self._tasks: set[asyncio.Task[None]] = set()  # launches, resets, watches: cancelled on close
        self._closers: set[asyncio.Task[None]] = set()  # CLIs being stopped: awaited on close, never cancelled
        self._changed = asyncio.Condition()
        self._closing = False

    def start(self, roles: Iterable[LoadedRole]) -> None:
        """Start warming every role the agent serves (in the background: the agent serves meanwhile)."""
        for role in roles:
            self._top_up(role)

    def ready_pids(self, role: LoadedRole) -> list[int]:
        return [cli.pid for cli in self._ready.get(_key(role), [])]

    async def wait_ready(self, role: LoadedRole, count: int | None = None) -> list[int]:
        """The pids of the role's ready CLIs once there are `count` (default: all of them)."""
        wanted = self._per_role if count is None else count
        async with self._changed:
            await self._changed.wait_for(lambda: len(self._ready.get(_key(role), [])) >= wanted)
        return self.ready_pids(role)

    async def take(self, role: LoadedRole) -> WarmCli | None:
        """A ready CLI for `role`, waiting a little for one that is starting; None means: start one cold."""
        key, topped_up = _key(role), False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_seconds
        async with self._changed:
            while not self._closing:
                cli = self._pop_alive(key)
                if cli is not None:
                    return cli
                if not self._starting.get(key) and not topped_up:
                    self._top_up(role)  # a launch failed earlier or a CLI died unnoticed: try again now
                    topped_up = True
                remaining = deadline - loop.time()
                if not self._starting.get(key) or remaining <= 0:
                    return None
                try:
                    async with asyncio.timeout(remaining):
                        await self._changed.wait()
                except TimeoutError:
                    return None
        return None

    def give_back(self, cli: WarmCli, *, reusable: bool) -> None:
        """The attempt on `cli` is over: reset it for another attempt, or discard it and start a replacement."""
        cli.binding.unbind()
        if reusable and not self._closing and cli.attempts < self._attempts_per_cli and cli.alive():
            self._starting[_key(cli.role)] = self._starting.get(_key(cli.role), 0) + 1
            self._spawn(self._reset(cli), f"warm-cli-reset:{cli.pid}", self._tasks)
            return
        self._discard(cli)

    async def close(self) -> None:
        """Stop every warm CLI and everything under way; returns when no CLI of the pool is left running."""
        self._closing = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        ready = [cli for clis in self._ready.values() for cli in clis]
        self._ready.clear()
        await asyncio.gather(*(cli.close() for cli in ready), *self._closers, return_exceptions=True)
        async with self._changed:
            self._changed.notify_all()

    def _pop_alive(self, key: str) -> WarmCli | None:
        ready = self._ready.get(key, [])
        while ready:
            cli = ready.pop(0)
            if cli.alive():
                return cli
            self._lost(cli, "before its attempt")
        return None

    def _top_up(self, role: LoadedRole) -> None:
        key = _key(role)
        while not self._closing and self._owned.get(key, 0) < self._per_role:
            self._owned[key] = self._owned.get(key, 0) + 1
            self._starting[key] = self._starting.get(key, 0) + 1
            self._spawn(self._start_one(role), f"warm-cli-start:{key}", self._tasks)

    @staticmethod
    def _spawn(work: Coroutine[Any, Any, None], name: str, tasks: set[asyncio.Task[None]]) -> None:
        task = asyncio.create_task(work, name=name)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _start_one(self, role: LoadedRole) -> None:
        key = _key(role)
        try:
            cli = await self._launch(role, self._options)
        except Exception as error:  # not retried here: the next attempt for the role tries again
            self._owned[key] -= 1
            log.warning("warm_cli_start_failed", role=role.role.name, error=repr(error))
            await self._settled(key)
            return
        except asyncio.CancelledError:
            self._owned[key] -= 1
            self._starting[key] -= 1
            raise
        log.info("warm_cli_ready", role=role.role.name, pid=cli.pid)
        self._spawn(self._watch(cli), f"warm-cli-watch:{cli.pid}", self._tasks)  # for the CLI's whole life
        await self._make_ready(cli)

    async def _reset(self, cli: WarmCli) -> None:
        try:
            fresh = await reset_conversation(cli)
        except Exception as error:  # TimeoutError included: a CLI that does not answer /clear is not reused
            log.warning("warm_cli_reset_failed", pid=cli.pid, error=repr(error))
            fresh = False
        except asyncio.CancelledError:
            self._starting[_key(cli.role)] -= 1
            self._discard(cli)
            raise
        if not fresh:
            await self._settled(_key(cli.role))
            self._discard(cli)
            return
        await self._make_ready(cli)

    async def _make_ready(self, cli: WarmCli) -> None:
        key = _key(cli.role)
        self._ready.setdefault(key, []).append(cli)
        await self._settled(key)

    async def _settled(self, key: str) -> None:
        """A launch or reset of `key` is over (ready or not): waiting takers look again."""
        self._starting[key] -= 1
        async with self._changed:
            self._changed.notify_all()

    async def _watch(self, cli: WarmCli) -> None:
        """Replace the CLI at once if it dies while it waits for an attempt (one that dies during an attempt or a
        reset is discarded by that)."""
        await cli.process.wait()
        if cli in self._ready.get(_key(cli.role), []):
            self._ready[_key(cli.role)].remove(cli)
            self._lost(cli, "while waiting")

    def _lost(self, cli: WarmCli, when: str) -> None:
        log.warning("warm_cli_died", role=cli.role.role.name, pid=cli.pid, when=when, exit_code=cli.process.returncode)
        self._discard(cli)

    def _discard(self, cli: WarmCli) -> None:
        key = _key(cli.role)
        self._owned[key] -= 1
        self._spawn(self._close_quietly(cli), f"warm-cli-close:{cli.pid}", self._closers)
        self._top_up(cli.role)

    async def _close_quietly(self, cli: WarmCli) -> None:
        try:
            await cli.close()
        except Exception as error:
            log.warning("warm_cli_close_failed", pid=cli.pid, error=repr(error))


def _key(role: LoadedRole) -> str:
    return role.capability.value
