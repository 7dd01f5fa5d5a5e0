"""``clearance rollout start|status|pause|resume|promote|abort``, ``rollback`` and ``drill``.

Rollouts are driven by a controller on the host that deploys: these commands work on the local
instance (CLEARANCE_HOME / CLEARANCE_DATABASE_URL), never through CLEARANCE_URL.
"""

from __future__ import annotations

import json
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from clearance.cli.common import (
    ACTOR_OPTION,
    DIGEST_ARGUMENT,
    JSON_OPTION,
    CliState,
    digest_arg,
    out,
    print_json,
    resolve_actor,
    state,
)
from clearance.cli.releases import render_decision
from clearance.core.rollout import Phase, Strategy
from clearance.errors import ExitCode, InputError
from clearance.store import rollouts as store
from clearance.store.rollouts import Rollout
from clearance.usecases import rollouts
from clearance.usecases.controller import Controller, Listener
from clearance.usecases.instance import Instance
from clearance.usecases.releases import GateBlocked
from clearance.usecases.rollback import DRILL, drill, rollback

rollout_app = typer.Typer(
    help="Progressive delivery: canary, blue-green and tenant rings, judged and reversible.",
    no_args_is_help=True,
)
ENV_OPTION = typer.Option(..., "--env", help="Target environment, e.g. staging or prod.")
SERVICE_OPTION = typer.Option(
    None, "--service", help="The service (needed when several roll out in --env)."
)
REASON_OPTION = typer.Option(None, "--reason", help="Why, recorded in the ledger.")


def register(root: typer.Typer) -> None:
    root.add_typer(rollout_app, name="rollout")
    root.command("rollback")(rollback_command)
    root.command("drill")(drill_command)


def _instance(cli: CliState) -> Instance:
    if cli.remote:
        raise InputError(
            "rollouts are driven on the host that deploys, not through CLEARANCE_URL",
            hint="run this where CLEARANCE_HOME (or CLEARANCE_DATABASE_URL) is set",
        )
    return cli.instance()


class _Bake:
    """A progress bar for the step that bakes (on a terminal only); gone when the step ends."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.step: int | None = None

    def update(self, data: dict[str, Any]) -> None:
        if not out.is_terminal:
            return
        if self.progress is None or self.step != data["step"]:
            self.stop()
            self.progress = Progress(
                TextColumn("  baking step {task.description}"),
                BarColumn(),
                TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
                console=out,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(str(data["step"] + 1), total=data["bake"])
            self.step = data["step"]
        assert self.task is not None
        self.progress.update(self.task, completed=data["elapsed"], total=data["bake"])

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        self.progress, self.task, self.step = None, None, None


def _listener(as_json: bool) -> Listener | None:
    if as_json:
        return None
    baking = _Bake()

    def show(what: str, r: Rollout, data: dict[str, Any]) -> None:
        if what == "baking":
            baking.update(data)
            return
        baking.stop()
        if what == "deploying":
            out.print(f"  deploying {r.service} {data['version']} in slot {data['slot']}")
        elif what == rollouts.STEP:
            weights = ", ".join(f"{k} {v}%" for k, v in data["weights"].items())
            pins = f"; pinned {_pins(data['tenants'])}" if data["tenants"] else ""
            bake = f", bake {data['bake']:g}s" if data["bake"] else ""
            out.print(
                f"  step {data['step'] + 1}/{len(r.plan.steps)} {data['name']}: "
                f"{weights}{pins}{bake}",
                markup=False,
            )
        elif what == rollouts.VERDICT:
            v = data["verdict"]
            colour = {"pass": "green", "marginal": "yellow", "fail": "red"}[v["verdict"]]
            score = "n/a" if v["score"] is None else f"{v['score']:.0f}"
            out.print(f"  judge: [{colour}]{v['verdict'].upper()}[/] (score {score})")
            for m in v["metrics"]:
                if m.get("classification") != "pass":
                    out.print(
                        f"    {m['name']}: {m.get('classification')} {m.get('reason', '')}",
                        markup=False,
                    )
        elif what == "aborted":
            secs = data.get("rollback_seconds")
            timing = f" in {secs * 1000:.0f} ms" if secs is not None else ""
            out.print(f"  [red]ABORTED[/]: {data['reason']}; traffic {data['traffic']}{timing}")
        elif what in (rollouts.PAUSED, rollouts.RESUMED, rollouts.TAKEN_OVER):
            out.print(
                f"  {what.split('.')[1]}: {data.get('reason') or data.get('from') or ''}",
                markup=False,
            )
        elif what == "completed":
            held = data.get("held") or {}
            out.print(
                f"  [green]COMPLETED[/]: {r.version} serves {r.service} in {r.env}"
                + (f" (held on the previous version: {_held(held)})" if held else "")
            )
        elif what == "error":
            out.print(f"  [red]error[/]: {data['message']}", markup=False)

    return show


def _pins(tenants: dict[str, str]) -> str:
    return ", ".join(f"{t}→{s}" for t, s in tenants.items())


def _held(held: dict[str, str]) -> str:
    return "; ".join(f"{t} ({why})" for t, why in held.items())


def _finish(r: Rollout, as_json: bool) -> None:
    if as_json:
        print_json(r.to_json())
    elif r.phase is Phase.PAUSED:
        out.print(
            f"[yellow]PAUSED[/]: {r.reason}. `clearance rollout resume --env {r.env}` or `abort`"
        )
    if r.phase is not Phase.COMPLETED:
        raise typer.Exit(ExitCode.REFUSED)


def _drive(instance: Instance, r: Rollout, as_json: bool) -> Rollout:
    controller = Controller(instance, listener=_listener(as_json))
    return controller.drive(r.id)


@rollout_app.command("start")
def start_command(
    ctx: typer.Context,
    digest: str = DIGEST_ARGUMENT,
    env: str = ENV_OPTION,
    strategy: Strategy | None = typer.Option(
        None, "--strategy", help="canary, blue-green or rings (default: the tier's)."
    ),
    service: str | None = SERVICE_OPTION,
    detach: bool = typer.Option(
        False, "--detach", help="Record the rollout and return; `rollout resume` drives it."
    ),
    actor: str | None = ACTOR_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Gate, plan and drive a rollout to --env; exit 0 when it completes, 1 if aborted/paused."""
    cli = state(ctx)
    who = resolve_actor(actor, cli.settings())
    with closing(_instance(cli)) as instance:
        try:
            r = rollouts.start(
                instance,
                digest_arg(digest),
                env=env,
                actor=who,
                strategy=strategy,
                service=service,
            )
        except GateBlocked as blocked:
            if as_json:
                print_json({"started": False, **blocked.decision.to_json()})
            else:
                render_decision(blocked.decision)
            raise typer.Exit(ExitCode.REFUSED) from blocked
        if not as_json:
            out.print(
                f"rollout {r.id}: {r.name} {r.version} to {env} ({r.service}), "
                f"{r.plan.strategy}, {len(r.plan.steps)} steps",
                markup=False,
            )
            if r.plan.held:
                out.print(f"  [yellow]held[/]: {_held(dict(r.plan.held))}")
        if detach:
            if as_json:
                print_json(r.to_json())
            return
        _finish(_drive(instance, r, as_json), as_json)


@rollout_app.command("status")
def status_command(
    ctx: typer.Context,
    env: str | None = typer.Option(None, "--env", help="Only this environment."),
    watch: bool = typer.Option(False, "--watch", help="Refresh until no rollout is active."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Rollouts: steps, weights, judge verdicts and progress; active ones first."""
    with closing(_instance(state(ctx))) as instance:
        while True:
            found = store.find(instance.db, env=env)
            shown = [r for r in found if r.phase.active] + [r for r in found if not r.phase.active][
                :5
            ]
            if as_json:
                print_json([_status_json(instance, r) for r in shown])
            else:
                _status_table(instance, shown)
            if not watch or not any(r.phase.active for r in shown):
                return
            time.sleep(2)


def _status_json(instance: Instance, r: Rollout) -> dict[str, Any]:
    verdicts = [e for e in rollouts.history(instance, r) if e.kind == rollouts.VERDICT]
    return {
        **r.to_json(),
        "driven": rollouts.driven(r, time.time()),
        "verdicts": [
            {
                "step": e.data["step"],
                "verdict": e.data["verdict"]["verdict"],
                "score": e.data["verdict"]["score"],
                "entry": e.seq,
            }
            for e in verdicts
        ],
    }


def _status_table(instance: Instance, shown: list[Rollout]) -> None:
    if not shown:
        out.print("no rollouts")
        return
    live = any(r.phase.active for r in shown)  # traffic and watchers matter only while active
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("rollout", "where", "version", "strategy", "phase"):
        table.add_column(name, no_wrap=True)
    for name in ("step", "verdicts", *(("traffic", "watched") if live else ())):
        table.add_column(name)
    for r in shown:
        info = _status_json(instance, r)
        step = r.plan.steps[min(r.step, len(r.plan.steps) - 1)]
        traffic = ", ".join(f"{k} {v}%" for k, v in step.weights.items())
        if step.tenants:
            traffic += f"; {_pins(dict(step.tenants))}"
        progress = ""
        if r.phase is Phase.RUNNING and r.step_started is not None and step.bake:
            elapsed = min(time.time() - r.step_started, step.bake)
            progress = f" (baking {elapsed:.0f}/{step.bake:g} s)"
        phase = {
            "running": "[cyan]running[/]",
            "paused": "[yellow]paused[/]",
            "completed": "[green]completed[/]",
            "aborted": "[red]aborted[/]",
        }[r.phase.value]
        row = [
            r.id,
            f"{r.env}/{r.service}",
            r.version,
            r.plan.strategy,
            phase,
            f"{min(r.step + 1, len(r.plan.steps))}/{len(r.plan.steps)} {step.name}{progress}",
            ", ".join(v["verdict"] for v in info["verdicts"]),
        ]
        if live:
            watched = "yes" if info["driven"] else ("[red]no[/]" if r.phase.active else "")
            row += [traffic if r.phase.active else "", watched]
        table.add_row(*row)
    out.print(table)
    for r in shown:
        if r.plan.held and r.phase.active:
            out.print(f"{r.id} held: {_held(dict(r.plan.held))}", markup=False)
        if r.reason:
            out.print(f"{r.id}: {r.reason}", markup=False)


def _request(
    ctx: typer.Context,
    action: str,
    env: str,
    service: str | None,
    reason: str | None,
    actor: str | None,
    as_json: bool,
) -> None:
    cli = state(ctx)
    who = resolve_actor(actor, cli.settings())
    with closing(_instance(cli)) as instance:
        r = rollouts.active(instance, env, service)
        r = rollouts.request(instance, r, action, actor=who, reason=reason)
        if not as_json:
            out.print(f"{action} requested for rollout {r.id} by {who}", markup=False)
        if rollouts.driven(r, time.time()):
            # The driving controller acts on it within a tick; wait to report the outcome.
            deadline = time.time() + 15
            while time.time() < deadline:
                current = store.load(instance.db, r.id)
                if current is None or current.request is None:
                    break
                time.sleep(0.3)
            final = store.load(instance.db, r.id) or r
            if as_json:
                print_json(final.to_json())
            else:
                out.print(f"rollout {r.id} is {final.phase.value}", markup=False)
            return
        _finish_request(_drive(instance, r, as_json), action, as_json)


def _finish_request(r: Rollout, action: str, as_json: bool) -> None:
    if as_json:
        print_json(r.to_json())
    else:
        out.print(f"rollout {r.id} is {r.phase.value}", markup=False)
    expected = {"pause": Phase.PAUSED, "abort": Phase.ABORTED}.get(action, Phase.COMPLETED)
    if r.phase is not expected:
        raise typer.Exit(ExitCode.REFUSED)


def _action(action: str, doc: str) -> None:
    def command(
        ctx: typer.Context,
        env: str = ENV_OPTION,
        service: str | None = SERVICE_OPTION,
        reason: str | None = REASON_OPTION,
        actor: str | None = ACTOR_OPTION,
        as_json: bool = JSON_OPTION,
    ) -> None:
        _request(ctx, action, env, service, reason, actor, as_json)

    command.__doc__ = doc
    rollout_app.command(action)(command)


_action("pause", "Pause the active rollout: traffic back to stable, the canary kept running.")
_action("resume", "Resume a paused rollout (or take over one nobody drives) and drive it.")
_action("promote", "Skip the remaining steps: gate again and make the canary stable.")
_action("abort", "Abort the active rollout: all traffic to stable now, canary scaled down.")


def _service(instance: Instance, env: str, service: str | None) -> str:
    if service is not None:
        return service
    known = {r.service for r in store.find(instance.db, env=env)}
    if len(known) == 1:
        return known.pop()
    raise InputError(
        f"which service? {', '.join(sorted(known)) or 'nothing'} rolled out to {env}",
        hint="pass --service NAME",
    )


def rollback_command(
    ctx: typer.Context,
    env: str = ENV_OPTION,
    service: str | None = SERVICE_OPTION,
    to: str | None = typer.Option(
        None, "--to", help="sha256:<hex> to roll back to (default: the version before)."
    ),
    fast: bool = typer.Option(
        False, "--fast", help="One step, no analysis: all traffic at once (an incident)."
    ),
    actor: str | None = ACTOR_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Abort the active rollout, or roll back to the version that served before; timed."""
    cli = state(ctx)
    who = resolve_actor(actor, cli.settings())
    with closing(_instance(cli)) as instance:
        name = _service(instance, env, service)
        controller = Controller(instance, listener=_listener(as_json))
        done = rollback(
            instance,
            env=env,
            actor=who,
            service=name,
            to=digest_arg(to) if to else None,
            fast=fast,
            controller=controller,
        )
    if as_json:
        print_json({**done.rollout.to_json(), "seconds": done.seconds, "aborted": done.aborted})
    else:
        what = (
            "aborted the active rollout"
            if done.aborted
            else f"rolled back to {done.rollout.version}"
        )
        out.print(f"{what} of {name} in {env} in {done.seconds:.2f} s", markup=False)
    ok = Phase.ABORTED if done.aborted else Phase.COMPLETED
    if done.rollout.phase is not ok:
        raise typer.Exit(ExitCode.REFUSED)


def drill_command(
    ctx: typer.Context,
    env: str = ENV_OPTION,
    service: str | None = SERVICE_OPTION,
    actor: str | None = ACTOR_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Exercise the rollback path in --env, time it, and attest it as rollback-drill evidence."""
    cli = state(ctx)
    who = resolve_actor(actor, cli.settings())
    with closing(_instance(cli)) as instance:
        entry = drill(instance, env=env, actor=who, service=_service(instance, env, service))
    summary = entry.data["summary"]
    if as_json:
        print_json({"entry": entry.seq, "digest": entry.subject, **entry.data})
    else:
        out.print(
            f"rollback drill in {env}: {entry.data['result']} ({json.dumps(summary)}), "
            f"recorded as {DRILL} evidence on {entry.subject} (entry {entry.seq})",
            markup=False,
        )
    if not entry.data["passed"]:
        raise typer.Exit(ExitCode.REFUSED)


@rollout_app.command("export")
def export_command(
    ctx: typer.Context,
    rollout_id: str = typer.Argument(..., help="The rollout's id (see clearance rollout status)."),
    directory: Path = typer.Option(..., "--dir", help="Where to write the sample files."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Write each judged step's samples (CSV) and the metrics file, for clearance judge."""
    with closing(_instance(state(ctx))) as instance:
        written = rollouts.export_samples(
            instance, rollouts.find_rollout(instance, rollout_id), directory
        )
    if as_json:
        print_json([str(p) for p in written])
        return
    for path in written:
        out.print(str(path), markup=False)
    out.print(
        f"replay a step: clearance judge --baseline {directory}/step1-baseline.csv "
        f"--canary {directory}/step1-canary.csv --metrics {directory}/metrics.yaml",
        markup=False,
    )


@rollout_app.command("run")
def run_command(
    ctx: typer.Context,
    env: str | None = typer.Option(None, "--env", help="Only rollouts to this environment."),
    follow: bool = typer.Option(
        False, "--follow", help="Keep watching for rollouts to drive until interrupted."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Be the controller: drive every running rollout nobody drives (its controller died, or it
    was started with --detach); paused ones wait for a person. Run it as a service with
    --follow."""
    with closing(_instance(state(ctx))) as instance:
        controller = Controller(instance, listener=_listener(as_json))
        try:
            done = controller.run(env=env, follow=follow)
        except KeyboardInterrupt:
            out.print("stopped: the rollouts it drove keep their state and their routes' leases")
            raise typer.Exit(130) from None
    if as_json:
        print_json([r.to_json() for r in done])
    else:
        for r in done:
            out.print(f"rollout {r.id} ({r.service} {r.version} to {r.env}): {r.phase.value}")
        if not done:
            out.print("no rollout needed a controller")
    if any(r.phase is not Phase.COMPLETED for r in done):
        raise typer.Exit(ExitCode.REFUSED)
