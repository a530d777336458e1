package main

import (
	"net/http"

	"coffer/internal/api"
	"coffer/internal/hbr"
)

// frontEnds is the handler of the listener: Alibaba HBR RPC requests
// (hbr.IsRPC: path "/" with x-acs-action or an Action parameter) go to
// the HBR front end, everything else to the AWS Backup API.
func frontEnds(aws *api.Server, h *hbr.Server) http.Handler {
	return hbr.Route(h, aws)
}
