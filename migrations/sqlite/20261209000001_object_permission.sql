-- Which MCP servers, and which of their tools, a virtual key or a team may use: LiteLLM's
-- `object_permission` (`{"mcp_servers": [...], "mcp_tool_permissions": {server: [tools]}}`),
-- kept with the key or team it belongs to so it travels with every read and change-feed
-- reload of that row. `{}` says nothing: the holder gets what the team or the operator's
-- default grants, which is what every existing key and team had.
-- JSON as text, like `metadata`.
ALTER TABLE virtual_keys ADD COLUMN object_permission TEXT NOT NULL DEFAULT '{}';
ALTER TABLE teams ADD COLUMN object_permission TEXT NOT NULL DEFAULT '{}';
