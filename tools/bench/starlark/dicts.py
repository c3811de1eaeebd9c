# Dict-heavy code: string keys, get/set, iteration over items.
def run():
    d = {}
    for i in range(1000000):
        k = "k" + str(i % 5000)
        d[k] = d.get(k, 0) + i
    total = 0
    for k, v in d.items():
        total += v
    inv = {}
    for k in d:
        inv[d[k] % 97] = k
    return total + len(inv)

result = run()
print(result)
