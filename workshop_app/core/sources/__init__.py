"""Frame sources: every way frames reach the workshop (adapter, replay, simulator)."""
