package frontend

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"

	"github.com/weft-mesh/weft/examples/shop/internal/cartpb"
	"github.com/weft-mesh/weft/examples/shop/internal/catalog"
	"github.com/weft-mesh/weft/examples/shop/internal/checkout"
)

// pageData is what the shop page shows; Error replaces what could not be
// loaded.
type pageData struct {
	User    string
	Listing catalog.Listing
	Cart    []cartLine
	Total   int64
	Order   *checkout.Order
	Error   string
}

// cartLine is a cart item with the catalog's name and price.
type cartLine struct {
	SKU, Name  string
	Qty        int
	PriceCents int64
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	if user == "" {
		user = DefaultUser
	}
	h.render(w, r, user, nil)
}

// render loads the catalog and user's cart and writes the page, with order
// shown as placed when not nil. A failing backend shows as an error on the
// page, answered with its status.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, user string, order *checkout.Order) {
	d := pageData{User: user, Order: order}
	code := http.StatusOK
	if !cartpb.ValidName(user) {
		d.User, code, d.Error = DefaultUser, http.StatusBadRequest, "invalid user name"
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	var errs []error
	l, err := h.cfg.Catalog.List(ctx)
	if err != nil {
		errs = append(errs, err)
	} else {
		d.Listing = l
		setCatalogHeaders(w, l)
	}
	c, err := h.cfg.Cart.GetCart(ctx, d.User)
	if err != nil {
		errs = append(errs, err)
	}
	for _, it := range c.Items {
		line := cartLine{SKU: it.SKU, Name: it.SKU, Qty: it.Qty}
		for _, p := range d.Listing.Products {
			if p.SKU == it.SKU {
				line.Name, line.PriceCents = p.Name, p.PriceCents
			}
		}
		d.Cart = append(d.Cart, line)
		d.Total += line.PriceCents * int64(it.Qty)
	}
	if err := errors.Join(errs...); err != nil && code == http.StatusOK {
		code, d.Error = statusOf(err), err.Error()
		h.cfg.Logger.Warn("page degraded", "status", code, "err", err)
	}
	h.writePage(w, code, d)
}

func (h *Handler) writePage(w http.ResponseWriter, code int, d pageData) {
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, d); err != nil {
		h.cfg.Logger.Error("render page", "err", err)
		http.Error(w, "render page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func (h *Handler) formAdd(w http.ResponseWriter, r *http.Request) {
	user, sku := r.PostFormValue("user"), r.PostFormValue("sku")
	qty, err := strconv.Atoi(r.PostFormValue("qty"))
	if err != nil || qty < 1 || qty > cartpb.MaxQty || !cartpb.ValidName(user) || !cartpb.ValidName(sku) {
		h.writePage(w, http.StatusBadRequest, pageData{User: DefaultUser, Error: "invalid form: want user, sku and qty 1-99"})
		return
	}
	if _, err := h.add(r.Context(), user, sku, qty); err != nil {
		h.writePage(w, statusOf(err), pageData{User: user, Error: err.Error()})
		return
	}
	http.Redirect(w, r, "/?user="+url.QueryEscape(user), http.StatusSeeOther)
}

func (h *Handler) formCheckout(w http.ResponseWriter, r *http.Request) {
	user := r.PostFormValue("user")
	if !cartpb.ValidName(user) {
		h.writePage(w, http.StatusBadRequest, pageData{User: DefaultUser, Error: "invalid form: want user"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	o, err := h.cfg.Checkout.Checkout(ctx, user)
	if err != nil {
		h.writePage(w, statusOf(err), pageData{User: user, Error: err.Error()})
		return
	}
	h.render(w, r, user, &o)
}

// money formats cents as dollars: 1250 -> "$12.50".
func money(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	c := strconv.FormatInt(cents%100, 10)
	if len(c) == 1 {
		c = "0" + c
	}
	return sign + "$" + strconv.FormatInt(cents/100, 10) + "." + c
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{"money": money}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>weft shop</title>
<style>
body { font: 15px/1.4 system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; color: #222; }
h1 { margin-bottom: .2rem; } .muted { color: #777; font-size: 13px; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1.5rem; }
td, th { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #ddd; }
.badge { background: #e33; color: #fff; border-radius: 3px; padding: 0 .35rem; font-size: 12px; }
.error { background: #fee; border: 1px solid #e99; padding: .5rem; }
.order { background: #efe; border: 1px solid #9c9; padding: .5rem; }
input[type=number] { width: 3.5rem; }
</style>
</head>
<body>
<h1>weft shop</h1>
<p class="muted">Signed in as <b>{{.User}}</b> (<a href="/?user=alice">alice</a>, <a href="/?user=bob">bob</a>).
{{with .Listing.Version}}Catalog served by <b id="catalog-version">{{.}}</b> ({{$.Listing.Instance}}) &mdash; reload to see the 90/10 split.{{end}}</p>
{{with .Error}}<p class="error">{{.}}</p>{{end}}
{{with .Order}}<div class="order" id="order">Order <b>{{.ID}}</b> placed: {{len .Lines}} line(s), total <b>{{money .TotalCents}}</b>.</div>{{end}}
<h2>Products</h2>
<table>
<tr><th>Product</th><th>Price</th><th></th></tr>
{{range .Listing.Products}}<tr>
<td>{{.Name}} {{with .Badge}}<span class="badge">{{.}}</span>{{end}}</td>
<td>{{money .PriceCents}}</td>
<td><form method="post" action="/cart"><input type="hidden" name="user" value="{{$.User}}"><input type="hidden" name="sku" value="{{.SKU}}"><input type="number" name="qty" value="1" min="1" max="99"> <button>Add to cart</button></form></td>
</tr>{{end}}
</table>
<h2>Cart</h2>
{{if .Cart}}<table>
<tr><th>Product</th><th>Qty</th><th>Price</th></tr>
{{range .Cart}}<tr><td>{{.Name}}</td><td>{{.Qty}}</td><td>{{money .PriceCents}}</td></tr>{{end}}
<tr><th>Total</th><th></th><th>{{money .Total}}</th></tr>
</table>
<form method="post" action="/checkout"><input type="hidden" name="user" value="{{.User}}"><button>Check out</button></form>
{{else}}<p class="muted">Your cart is empty.</p>{{end}}
<p class="muted">JSON API: <a href="/api/products">/api/products</a>, <a href="/api/cart/{{.User}}">/api/cart/{{.User}}</a>.</p>
</body>
</html>
`))
