"""Device facts, refreshed about once a second from the engine's device_info()."""
from __future__ import annotations

from textual.widgets import Static

from ...engine.events import Event, RunStarted
from ...engine.safe_text import visible
from .hidden import in_hidden_tab


class DevicePanel(Static):
    def __init__(self, **kwargs) -> None:
        super().__init__("", markup=False, **kwargs)  # host names, CPU names and run.json are data
        self.device: str | None = None  # the run's device, or None for what 'auto' picks
        self.recorded: dict | None = None  # run.json of a watched run: its device, not this machine's

    def on_mount(self) -> None:
        self.poll()
        self.set_interval(1.0, self.poll)

    def on_show(self) -> None:
        self.poll()

    def add_event(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.device = event.device

    def show_recorded(self, status: dict | None) -> None:
        """Show the device a watched run recorded (None: back to this machine's live figures)."""
        self.recorded = status
        if status is None:
            self.poll()
            return
        where = f"{status.get('device', '?')} on {status.get('host', '?')}, pid {status.get('pid', '?')}"
        lines = [f"recorded by the run: {where}"]
        if status.get("num_params"):
            lines.append(f"{status['num_params']:,} parameters")
        self.update(visible("\n".join(lines)), layout=False)  # run.json's host and device are data

    def poll(self) -> None:
        if self.recorded is not None:
            return
        if in_hidden_tab(self):
            return  # on_show polls
        from ...engine.device import device_info

        info = device_info(self.device)
        lines = [f"{info['device']}  {info.get('name', '')}",
                 f"torch {info['torch']}  threads {info['threads']}  process {info['process_memory_mb']:,.0f} MiB"]
        if "gpu_memory_total_mb" in info:
            lines.append(f"GPU mem alloc {info['gpu_memory_allocated_mb']:,.0f}  reserved "
                         f"{info['gpu_memory_reserved_mb']:,.0f}  peak {info['gpu_memory_peak_mb']:,.0f}  "
                         f"of {info['gpu_memory_total_mb']:,} MiB")
            if "gpu_utilization_pct" in info:
                lines.append(f"GPU util {info['gpu_utilization_pct']}%  {info['gpu_temperature_c']}°C  "
                             f"driver {info['driver']}")
        else:
            lines.append(f"CPU {info['cpu']}  {info['cpu_cores']} cores")
        self.update("\n".join(lines), layout=False)
