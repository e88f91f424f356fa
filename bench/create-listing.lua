-- wrk script: POST /v1/listings (create a product listing draft) as one seller.
wrk.method = "POST"
wrk.path = "/v1/listings"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Actor"] = "id=5f0c6c1e-3f7a-4c8e-9d2b-1a2b3c4d5e6f; roles=seller; plan=premium"
wrk.body = [[{"title":"Samsung Galaxy S24 Ultra 256GB","description":"Yangi, kafolat 1 yil",
  "category":"phones","price":1450000000,"images":["img/s24-1.jpg","img/s24-2.jpg"],
  "attributes":{"brand":"Samsung","memory":"256GB"},
  "details":{"kind":"product","variants":[{"sku":"black","label":"Qora","stock":5}]}}]]
