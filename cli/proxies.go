//go:build !proxyonly

package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/weft-mesh/weft/control/xds"
)

// isProxiesKind reports whether a `weft get` kind names the connected
// proxies (served by the xDS server rather than the store).
func isProxiesKind(k string) bool {
	switch strings.ToLower(k) {
	case "proxies", "proxy", "px":
		return true
	}
	return false
}

// getProxies prints `weft get proxies`: every connected proxy with its
// config version and its last ACK and NACK.
func getProxies(ctx context.Context, s streams, f getFlags, name string) error {
	var list struct {
		Kind  string            `json:"kind"`
		Items []xds.ProxyStatus `json:"items"`
	}
	if err := newClient(f.server).GetJSON(ctx, "/api/v1/proxies", &list); err != nil {
		return reportAPIError(s, err)
	}
	items := list.Items[:0]
	for _, p := range list.Items {
		if (name == "" || p.ID == name) && (f.allNamespaces || name != "" || p.Namespace == f.namespace) {
			items = append(items, p)
		}
	}
	list.Items = items
	if done, err := writeStructured(s.out, f.output, list); done {
		return err
	}
	if len(items) == 0 {
		fmt.Fprintln(s.err, "No proxies connected")
		return nil
	}
	tw := tabwriter.NewWriter(s.out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tWORKLOAD\tROLE\tPROTOCOL\tVERSION\tSYNCED\tLAST ACK\tLAST NACK")
	now := time.Now()
	for _, p := range items {
		ack := "-"
		if !p.LastAck.IsZero() {
			ack = shortAge(now.Sub(p.LastAck)) + " ago"
		}
		nack := "-"
		if p.LastNack != "" {
			nack = p.LastNack
			if len(nack) > 60 && f.output != "wide" {
				nack = nack[:57] + "..."
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%t\t%s\t%s\n", p.Namespace, p.ID, orDash(p.Workload), p.Role, p.Protocol, p.ConfigVersion, p.Synced, ack, nack)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shortAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
