package api

import "github.com/weft-mesh/weft/control/resource"

// Wire types of the resource API, shared by the server and Client.

// ObjectResult is the outcome for one object of an apply or delete.
type ObjectResult struct {
	Kind            resource.Kind `json:"kind"`
	Namespace       string        `json:"namespace"`
	Name            string        `json:"name"`
	Outcome         string        `json:"outcome"` // created, configured, unchanged, deleted, not found
	ResourceVersion string        `json:"resourceVersion,omitempty"`
	Generation      int64         `json:"generation,omitempty"`
}

// ApplyResponse answers POST /api/v1/apply and the delete endpoints.
type ApplyResponse struct {
	Results  []ObjectResult `json:"results"`
	Warnings []string       `json:"warnings,omitempty"`
	Revision int64          `json:"revision"`
	DryRun   bool           `json:"dryRun,omitempty"`
}

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Code     int      `json:"code"`
	Error    string   `json:"error"`
	Errors   []string `json:"errors,omitempty"`   // every problem, one line each
	Warnings []string `json:"warnings,omitempty"` // warnings found before failing
}

// ListMeta is the metadata of a List.
type ListMeta struct {
	ResourceVersion string `json:"resourceVersion"`
}

// List answers GET /api/v1/{kind}: a Kubernetes-style List that `weft
// apply` accepts back.
type List struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   ListMeta          `json:"metadata"`
	Items      []resource.Object `json:"items"`
}

// VersionResponse answers GET /api/v1/version.
type VersionResponse struct {
	Version  string `json:"version"`
	Revision int64  `json:"revision"`
}

// SourcesContentType is the Content-Type of a SourcesRequest: several named
// inputs (files) applied or deleted in one transaction.
const SourcesContentType = "application/vnd.weft.sources+json"

// Source is one named input: a multi-document YAML or JSON text.
type Source struct {
	Name string `json:"name"`
	Data string `json:"data"`
}

// SourcesRequest is the body of an apply or delete of several files.
type SourcesRequest struct {
	Sources []Source `json:"sources"`
}
