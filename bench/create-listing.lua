-- wrk script: POST /v1/listings (create a product listing draft) as one seller.
-- BOZOR_TOKEN is a seller's access token (bench/http.sh mints one with `bozor token`).
wrk.method = "POST"
wrk.path = "/v1/listings"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BOZOR_TOKEN")
wrk.body = [[{"title":"Samsung Galaxy S24 Ultra 256GB","description":"Yangi, kafolat 1 yil",
  "category":"phones","price":1450000000,"images":["img/s24-1.jpg","img/s24-2.jpg"],
  "attributes":{"brand":"Samsung","memory":"256GB"},
  "details":{"kind":"product","variants":[{"sku":"black","label":"Qora","stock":5}]}}]]
