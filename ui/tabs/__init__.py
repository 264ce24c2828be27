"""One module per tab of the page: each has `layout` (components), module-level handlers, `wire`."""
