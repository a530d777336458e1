package main

import (
	"net/http"

	"coffer/internal/api"
	"coffer/internal/console"
	"coffer/internal/hbr"
)

// frontEnds is the handler of the listener: the web console under
// /console/, Alibaba HBR RPC requests (hbr.IsRPC: path "/" with
// x-acs-action or an Action parameter) to the HBR front end, everything
// else to the AWS Backup API.
func frontEnds(aws *api.Server, h *hbr.Server, c *console.Console) http.Handler {
	return console.Route(c, hbr.Route(h, aws))
}
