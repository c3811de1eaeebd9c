# Sorting: a pseudo-random list of ints, sorted plainly, with a key, and
# a list of tuples.
def run():
    x = []
    seed = 42
    for i in range(400000):
        seed = (seed * 1103515245 + 12345) % 2147483648
        x.append(seed)
    y = sorted(x)
    z = sorted(x, key = lambda v: -v)
    pairs = sorted([(v % 1000, v) for v in x])
    return y[0] + z[0] + pairs[0][1]

result = run()
print(result)
