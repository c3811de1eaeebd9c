# Fibonacci by loop: small-int arithmetic, tuple assignment, calls.
def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a

def main():
    total = 0
    for i in range(100000):
        total += fib(90) % 1000
    return total

result = main()
print(result)
